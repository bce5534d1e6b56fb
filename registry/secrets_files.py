"""Secret files a node makes for itself on first start (0600, never logged): data keys, HMAC
keys. Production passes them in through the environment instead."""

from __future__ import annotations

import base64
import os
from pathlib import Path


def load_or_create_secret(path: Path, size: int = 32) -> bytes:
    """The base64 secret in `path`, created with `size` random bytes if the file is missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(base64.b64encode(os.urandom(size)).decode())
    return base64.b64decode(path.read_text().strip())
