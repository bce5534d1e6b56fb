"""Field leaves: one salted commitment per scalar field of a certificate (DESIGN.md §3).

A certificate's fields are flattened to dotted paths (`holder.name`, `ext.scope[0]`); each scalar
becomes a `FieldLeaf(salt, path, value)` where `value` is the RFC 8785 canonical JSON text of the
scalar. The salt (16 random bytes) stops a verifier from guessing hidden fields by brute force.

Empty dicts and empty lists carry no scalar, so they produce no leaves and do not survive
`unflatten(flatten(x))`; issuers should omit them rather than rely on them.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from json.encoder import encode_basestring  # C escaper, = RFC 8785 rules
from operator import itemgetter

import orjson
import rfc8785

from registry.certificate.merkle import encode_field_leaf, standard_leaf_hash
from registry.error_codes import ErrorCode
from registry.errors import CertificateError

SALT_BYTES = 16
_INT_MAX = 2**53 - 1  # RFC 8785 / I-JSON: integers beyond this are not exact in IEEE 754
_SALT_RE = re.compile(r"0x[0-9a-fA-F]{32}")
_KEY_RE = re.compile(r"[^.\[\]]+")
_PATH_TOKEN_RE = re.compile(r"\.([^.\[\]]+)|\[(0|[1-9][0-9]*)\]")
_UNPARSED = object()


def _malformed(message: str, **details: object) -> CertificateError:
    return CertificateError(message, code=ErrorCode.CERT_MALFORMED, **details)


@dataclass(frozen=True, slots=True)
class FieldLeaf:
    """One committed field: `value` is canonical JSON text, so `"张三"` keeps its quotes."""

    salt: bytes
    path: str
    value: str
    parsed: object = field(
        default=_UNPARSED, compare=False, repr=False
    )  # `value` parsed, when it was checked

    def hash(self) -> bytes:
        """The OpenZeppelin standard leaf hash of `abi.encode(bytes16 salt, string path, string value)`."""
        return standard_leaf_hash(encode_field_leaf(self.salt, self.path, self.value))

    def to_json(self) -> dict[str, str]:
        return {"salt": "0x" + self.salt.hex(), "path": self.path, "value": self.value}

    @classmethod
    def from_json(cls, d: object) -> FieldLeaf:
        """Parse untrusted input strictly: a leaf that parses is one any Ethereum tool hashes alike."""
        if type(d) is not dict and not isinstance(d, Mapping):  # the ABC check is slow: 20 leaves a request
            raise _malformed("field leaf must be an object")
        salt, path, value = d.get("salt"), d.get("path"), d.get("value")
        if not isinstance(salt, str) or not _SALT_RE.fullmatch(salt):
            raise _malformed("field leaf salt must be 0x + 32 hex digits", salt=salt)
        if not isinstance(path, str):
            raise _malformed("field leaf path must be a string", path=path)
        _checked_path(path)
        if not isinstance(value, str):
            raise _malformed("field leaf value must be a string of canonical JSON", path=path)
        try:
            parsed = orjson.loads(
                value
            )  # what it refuses and json.loads takes is never canonical (NaN, deep nesting)
            if (
                type(parsed) is float
            ):  # orjson reads digits beyond 64 bits as a float; json, like RFC 8785, as an int
                parsed = json.loads(value)
        except (orjson.JSONDecodeError, ValueError, RecursionError) as e:
            raise _malformed("field leaf value is not JSON", path=path) from e
        if isinstance(parsed, (dict, list)) or canonical_json(parsed) != value:
            raise _malformed("field leaf value is not the canonical JSON of a scalar", path=path)
        return cls(bytes.fromhex(salt[2:]), path, value, parsed)


def canonical_json(value: object) -> str:
    """RFC 8785 text of `value`; exact types str/int/bool/None take a fast path identical to `rfc8785`."""
    t = type(value)
    if t is str:  # `t is str` does not narrow `value`, `isinstance` would take str subclasses too
        if not value.isascii():  # type: ignore[attr-defined]
            try:
                value.encode("utf-8")  # type: ignore[attr-defined]  # lone surrogates: rfc8785 rejects them too
            except UnicodeEncodeError as e:
                raise _malformed("string is not valid Unicode") from e
        return encode_basestring(value)  # type: ignore[arg-type]
    if t is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    if t is int and -_INT_MAX <= value <= _INT_MAX:  # type: ignore[operator]
        return str(value)
    try:
        return rfc8785.dumps(value).decode()  # type: ignore[arg-type]
    except rfc8785.CanonicalizationError as e:
        raise _malformed(f"value has no RFC 8785 form: {e}") from e


_SCALARS = (str, int, float, bool, type(None))
_first = itemgetter(0)
_MISSING = object()


def flatten(fields: Mapping[str, object]) -> list[tuple[str, object]]:
    """(path, scalar) pairs sorted by path; keys must be non-empty and free of '.', '[' and ']'."""
    out: list[tuple[str, object]] = []

    def walk(prefix: str, node: object) -> None:
        t = type(node)
        if t in _SCALARS:  # exact types first: isinstance against ABCs is slow on the hot path
            out.append((prefix, node))
        elif t is dict or isinstance(node, Mapping):
            for key, child in node.items():  # type: ignore[attr-defined]
                if type(key) is not str or not key or "." in key or "[" in key or "]" in key:
                    raise _malformed("field name must be a non-empty string without '.', '[' or ']'", key=key)
                walk(f"{prefix}.{key}" if prefix else key, child)
        elif t is list or t is tuple or isinstance(node, (list, tuple)):
            for i, child in enumerate(node):  # type: ignore[arg-type]
                walk(f"{prefix}[{i}]", child)
        elif isinstance(node, _SCALARS):  # subclasses (str enums, IntEnum): rfc8785 decides
            out.append((prefix, node))
        else:
            raise _malformed(f"field {prefix} has unsupported type {t.__name__}", path=prefix)

    if not isinstance(fields, Mapping):
        raise _malformed("certificate fields must be an object")
    walk("", fields)
    out.sort(key=_first)
    return out


@lru_cache(maxsize=4096)  # paths repeat across certificates: verify each once
def _checked_path(path: str) -> tuple[str | int, ...]:
    try:
        path.encode("utf-8")  # a lone surrogate has no UTF-8 form: no tool could hash it
    except UnicodeEncodeError as e:
        raise _malformed("field leaf path is not valid Unicode") from e
    return tuple(_parse_path(path))


def _parse_path(path: str) -> list[str | int]:
    """Split `a.b[2].c` into `["a", "b", 2, "c"]`; anything else is malformed."""
    head = _KEY_RE.match(path)
    if head is None:
        raise _malformed("path must start with a field name", path=path)
    tokens: list[str | int] = [head.group(0)]
    pos = head.end()
    while pos < len(path):
        m = _PATH_TOKEN_RE.match(path, pos)
        if m is None:
            raise _malformed("path is not of the form name(.name|[n])*", path=path)
        tokens.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    return tokens


def unflatten(pairs: Iterable[tuple[str, object]]) -> dict[str, object]:
    """Rebuild nested fields from (path, value) pairs, for full sets and disclosed subsets alike.

    A list whose present indices are exactly 0..k-1 comes back as a list. A list with gaps (some
    items hidden) comes back as a dict {index: value} so hidden items are never shown as null.
    """
    root: dict[object, object] = {}
    lists: set[int] = set()  # ids of containers built from [n] tokens, converted at the end
    for path, value in pairs:
        tokens = _parse_path(path)
        node = root
        for token, nxt in itertools.pairwise(tokens):
            child = node.get(token, _MISSING)
            if child is _MISSING:
                child = {}
                node[token] = child
                if isinstance(nxt, int):
                    lists.add(id(child))
            elif not isinstance(child, dict) or (id(child) in lists) != isinstance(nxt, int):
                raise _malformed("path conflicts with another path", path=path)
            node = child
        if tokens[-1] in node:
            raise _malformed("duplicate or conflicting path", path=path)
        node[tokens[-1]] = value
    return _finish(root, lists)  # type: ignore[return-value]


def _finish(node: object, lists: set[int]) -> object:
    if not isinstance(node, dict):
        return node
    items = {k: _finish(v, lists) for k, v in node.items()}
    if id(node) in lists:
        keys = sorted(items)
        if keys == list(range(len(keys))):
            return [items[k] for k in keys]
        return {k: items[k] for k in keys}
    return items


def make_leaves(
    fields: Mapping[str, object], salt_source: Callable[[int], bytes] = os.urandom
) -> list[FieldLeaf]:
    """Salt and canonicalise every scalar field; `salt_source` is a seam for seeded tests."""
    pairs = flatten(fields)
    salts = salt_source(SALT_BYTES * len(pairs))  # one call, not one per field: issuing is hot
    if len(salts) != SALT_BYTES * len(pairs):
        raise ValueError("salt_source must return the number of bytes asked for")
    return [
        FieldLeaf(salts[i * SALT_BYTES : (i + 1) * SALT_BYTES], path, canonical_json(value))
        for i, (path, value) in enumerate(pairs)
    ]


def leaf_value(leaf: FieldLeaf) -> object:
    """The Python value a leaf commits to."""
    return json.loads(leaf.value) if leaf.parsed is _UNPARSED else leaf.parsed
