"""Secret files a node makes for itself on first start (0600, never logged): data keys, HMAC
keys. Production passes them in through the environment instead.

And private files and folders in general: databases, keystores and holder packages are made 0600
in 0700 folders. Modes are set explicitly (chmod), whatever the umask: a umask can only take bits
away from what `open`/`mkdir` ask for, and an old file or folder keeps the mode it had."""

from __future__ import annotations

import base64
import os
from pathlib import Path

PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600


def private_folder(path: Path, *, tighten: bool = True) -> Path:
    """`path` as a folder only its owner may open: it and any missing parents are made 0700; with
    `tighten` (a folder of ours, e.g. under ECERT_HOME) an existing one is set to 0700 too."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
    for made in missing:
        os.chmod(made, PRIVATE_FOLDER)
    if tighten and not missing and path.stat().st_mode & 0o7777 != PRIVATE_FOLDER:
        os.chmod(path, PRIVATE_FOLDER)
    return path


def private_file(path: Path) -> Path:
    """Make `path` (if missing) and set it 0600, e.g. a SQLite database before the driver opens it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    return path


def write_private(path: Path, data: bytes | str) -> None:
    """Write `data` to `path`, 0600 (also when the file was there with another mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(fd, PRIVATE_FILE)
        handle.write(data.encode() if isinstance(data, str) else data)


def private_sqlite(folder: Path, name: str) -> str:
    """The SQLAlchemy URL of SQLite file `name` in private `folder`, the file made 0600 beforehand
    (SQLite makes its -wal, -shm and -journal files with the database's mode)."""
    return f"sqlite:///{private_file(folder / name).resolve()}"


def load_or_create_secret(path: Path, size: int = 32) -> bytes:
    """The base64 secret in `path`, created 0600 with `size` random bytes if the file is missing."""
    if not path.exists():
        private_folder(path.parent, tighten=False)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                os.fchmod(fd, PRIVATE_FILE)
                handle.write(base64.b64encode(os.urandom(size)).decode())
    return base64.b64decode(path.read_text().strip())
