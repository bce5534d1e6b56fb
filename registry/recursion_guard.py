"""Keep the recursion limit sane however late `py_ecc` or py-evm's `eth` is imported.

Both set `sys.setrecursionlimit(max(big, current))` when imported. A meta-path finder wraps the
loader of exactly those two packages and puts the limit back right after their module code ran,
so the CLI can import web3 lazily (only in the commands that need a chain) without a later
import silently re-opening the C stack overflow.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from importlib.abc import Loader

LIMIT = 5_000
RAISERS = frozenset({"py_ecc", "eth"})  # top-level packages whose import raises the limit


def restore() -> None:
    """Set the recursion limit to `LIMIT`: deep enough for any document we accept, shallow
    enough that too deep a one is a RecursionError, not a crash of the process."""
    sys.setrecursionlimit(LIMIT)


class _RestoringLoader:
    """The package's own loader, restoring the limit after the module ran (duck-typed rather
    than an `importlib.abc` subclass: that module costs 9 ms to import)."""

    def __init__(self, wrapped: Loader) -> None:
        self._wrapped = wrapped

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._wrapped.create_module(spec)

    def __getattr__(self, name: str) -> Any:  # is_package, get_resource_reader, …: the wrapped loader's
        return getattr(self._wrapped, name)

    def exec_module(self, module: ModuleType) -> None:
        try:
            self._wrapped.exec_module(module)
        finally:
            restore()


class _Finder:
    is_ecert_recursion_guard = True  # an attribute, not the class: a reloaded module makes a new class

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in RAISERS:
            return None
        for finder in sys.meta_path:
            if getattr(finder, "is_ecert_recursion_guard", False) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    # it is duck-typed, not an `importlib.abc.Loader` subclass (see the class)
                    spec.loader = cast("Loader", _RestoringLoader(spec.loader))
                return spec
        return None


def install() -> None:
    """Restore the limit now (in case a raiser came first) and after every later raiser."""
    restore()
    if not any(getattr(finder, "is_ecert_recursion_guard", False) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
