"""GB/T 2260 region patterns, as policies, snapshots and regional indexes name them.

`*` is every region; a 6-digit code matches by prefix, its trailing `00` pairs being wildcards:
`440000` covers `44xxxx`, `440100` covers `4401xx`, `440103` only itself. The explicit forms
`44xxxx` and `3301xx` mean the same as `440000` and `330100`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from registry.errors import ConfigError

ANY = "*"
_PATTERN = re.compile(r"(?!00)[0-9]{2}(?:[0-9]{2}|xx)(?:[0-9]{2}|xx)")


def region_prefix(pattern: str) -> str:
    """The code prefix a region pattern covers: `*` → ``, `440000`/`44xxxx` → `44`, `3301xx` → `3301`;
    `ConfigError` for anything else."""
    if pattern == ANY:
        return ""
    if not isinstance(pattern, str) or not _PATTERN.fullmatch(pattern) or "x" in pattern.rstrip("x"):
        raise ConfigError(f"Region {pattern!r} is not a GB/T 2260 code or prefix form (440000, 4401xx, *)")
    code = pattern.replace("x", "0")
    return code[:2] if code[2:] == "0000" else code[:4] if code[4:] == "00" else code


def region_prefixes(patterns: Iterable[str]) -> tuple[str, ...]:
    return tuple(region_prefix(p) for p in patterns)


def in_regions(region: int | str, prefixes: tuple[str, ...]) -> bool:
    """Whether a region code (an agency's, as the chain keeps it) falls under any prefix."""
    code = f"{region:06d}" if isinstance(region, int) else region
    return code.startswith(prefixes)
