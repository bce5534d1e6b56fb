"""Receipts: the verifier node signs every answer it gives (Ed25519), so a bank can keep proof of it.

A receipt document is

    {"receipt": {
        "requestDigest": "0x…",         sha256 of the canonical request (`digest_request`)
        "verdict": "VALID" | "INVALID" | "ERROR",
        "reason": "CERT_REVOKED" | null, the code of the first failed check
        "checks": [{"kind": "integrity", "outcome": "VALID", "code": "DIGEST_OK"}, …],
        "chainId": 31337 | null,        null when verified offline
        "block": 1234 | null,           the block the chain facts were read at
        "source": "chain" | "index" | "snapshot" | "offline" | "lastKnown",
        "ageSeconds": 42 | null,        only when source is "lastKnown": how old the index's answer was
        "checkedAt": "2026-11-23T08:00:00.123Z",
        "disclosedDigest": "0x…",       sha256 of the answer's `disclosed` object (`digest_disclosed`)
        "node": {"region": "330000", "keyId": "<16 hex>"}},
     "signature": "<base64 of the 64-byte Ed25519 signature>"}

The signature covers the RFC 8785 (JCS) canonical JSON bytes of the `receipt` object, so any
language with a JCS library and Ed25519 checks it. `keyId` is the first 16 hex digits of the
sha256 of the node's raw 32-byte public key; `verify_receipt` refuses a receipt whose keyId is
not the key it is checked with.

The request digest ties a receipt to what was shown: sha256 over the RFC 8785 bytes of the
presentation's holder-package JSON (`Presentation.to_json()` without the `anchor` hint, which is
not part of the certificate). An `EC1:` code and the JSON package of the same presentation give
the same digest, and the holder or bank that kept the package can recompute it.

The disclosed values are not in the receipt, which may then be kept, forwarded and stored
without personal data: the answer carries them beside it as `disclosed` =
`{"salt": "<22 base64url>", "values": {"holder.name": "…", …}}`, and the receipt's
`disclosedDigest` is the sha256 of that object's RFC 8785 bytes, so it covers every value (a bank
keeps both and proves what it saw). The random salt, given only with the values, keeps the digest
from being matched against guessed names or numbers. Receipts made before `disclosedDigest`
existed still verify (`verify_receipt` accepts both shapes).

A receipt's id (`receipt_id`) is the first 32 hex digits of the sha256 of its `signature` text:
anyone holding the receipt can compute it, and the node that signed it serves the receipt again
by it (`GET /v1/receipts/{id}`, to the organisation that asked).

The private key lives in a PEM file (PKCS#8, mode 0600) made on first start; it is never logged
and never leaves `ReceiptSigner`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import rfc8785
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from registry import jsonbytes
from registry.error_codes import ErrorCode
from registry.errors import KeystoreError

if TYPE_CHECKING:
    from registry.certificate.presentation import Presentation
    from verifier.pipeline import Report

__all__ = [
    "ReceiptSigner",
    "canonical_bytes",
    "covers_disclosed",
    "digest_disclosed",
    "digest_request",
    "disclosed_values",
    "key_id",
    "make_receipt",
    "receipt_id",
    "verify_receipt",
]

log = logging.getLogger(__name__)

_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw
_SAFE_INT = 2**53 - 1
_RECEIPT_KEYS_V1 = frozenset(
    {"requestDigest", "verdict", "reason", "checks", "chainId", "block", "source", "checkedAt", "node"}
)  # receipts made before they covered the disclosed values: still verify
_RECEIPT_KEYS = _RECEIPT_KEYS_V1 | {"disclosedDigest"}
_LAST_KNOWN_KEY = "ageSeconds"  # only in a receipt of an answer from the index with the chain away


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 bytes of `value`.

    For JSON made only of ASCII-keyed objects, lists, strings, safe integers, booleans and null
    (every receipt), sorted compact JSON (`jsonbytes.dumps`) is byte for byte RFC 8785 and far
    faster than the pure-Python `rfc8785`; anything else (floats, big integers, non-ASCII keys)
    goes through `rfc8785.dumps`. The unit tests cross-check both paths.
    """
    if _is_plain(value):
        return _plain_bytes(value)
    return rfc8785.dumps(value)


def _plain_bytes(value: Any) -> bytes:
    return jsonbytes.dumps(value, sort_keys=True)


def _is_plain(value: Any) -> bool:
    """Only ASCII-keyed objects, lists, strings, safe integers, booleans and null (walked with a
    stack: no recursion limit, and no generator frame per node)."""
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is str or t is bool or v is None:
            continue
        if t is int:
            if not -_SAFE_INT <= v <= _SAFE_INT:
                return False
        elif t is dict:
            try:
                if not "".join(v).isascii():  # one C call over every key (str.join takes str only)
                    return False
            except TypeError:
                return False
            stack.extend(v.values())
        elif t is list:
            stack.extend(v)
        else:
            return False
    return True


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of sha256(raw 32-byte public key)."""
    return hashlib.sha256(public_key.public_bytes(*_RAW)).hexdigest()[:16]


class ReceiptSigner:
    """The node's Ed25519 receipt key. Its repr shows the key id only."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._public = private_key.public_key()
        self.key_id = key_id(self._public)

    def __repr__(self) -> str:
        return f"ReceiptSigner(key_id={self.key_id!r})"

    @classmethod
    def generate(cls) -> ReceiptSigner:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: Path | str) -> ReceiptSigner:
        """The key in `path` (unencrypted PKCS#8 PEM, mode 0600), made on first use.

        Creation is atomic (written aside, then linked into place), so two workers starting at
        once end with the same key. A key file readable by group or others is refused.
        """
        path = Path(path)
        if not path.exists():
            _create_key_file(path)
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeystoreError(
                f"Receipt key {path} is readable by others (mode {stat.S_IMODE(mode):o}): run `chmod 600 {path}`",
                code=ErrorCode.RECEIPT_KEY_EXPOSED,
            )
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise KeystoreError(
                f"Receipt key {path} is not an unencrypted PEM key: delete it to make a new one",
                code=ErrorCode.RECEIPT_KEY_INVALID,
            ) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeystoreError(
                f"Receipt key {path} is not an Ed25519 key", code=ErrorCode.RECEIPT_KEY_INVALID
            )
        signer = cls(key)
        log.info("receipt key %s loaded from %s", signer.key_id, path)
        return signer

    def public_key(self) -> Ed25519PublicKey:
        return self._public

    def public_key_pem(self) -> str:
        return self._public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def public_key_b64(self) -> str:
        """Base64 of the raw 32-byte public key."""
        return base64.b64encode(self._public.public_bytes(*_RAW)).decode("ascii")

    def sign(self, payload: dict[str, Any]) -> dict[str, Any]:
        """`{"receipt": …, "signature": base64}`: `payload` with `node.keyId` set to this key's id,
        signed over its RFC 8785 bytes."""
        receipt = {**payload, "node": {**payload.get("node", {}), "keyId": self.key_id}}
        signature = self._key.sign(canonical_bytes(receipt))
        return {"receipt": receipt, "signature": base64.b64encode(signature).decode("ascii")}


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    aside = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another worker made the key first: theirs is used
            os.link(aside, path)
    finally:
        aside.unlink(missing_ok=True)


def _public_key(key: Ed25519PublicKey | bytes | str) -> Ed25519PublicKey:
    """An Ed25519 public key from itself, raw 32 bytes, PEM (bytes or text) or base64 of raw."""
    if isinstance(key, Ed25519PublicKey):
        return key
    if isinstance(key, str):
        key = (
            key.encode("ascii")
            if key.lstrip().startswith("-----BEGIN")
            else base64.b64decode(key, validate=True)
        )
    if len(key) == 32:
        return Ed25519PublicKey.from_public_bytes(key)
    loaded = serialization.load_pem_public_key(key)
    if not isinstance(loaded, Ed25519PublicKey):
        raise TypeError("not an Ed25519 public key")
    return loaded


def verify_receipt(document: Any, public_key: Ed25519PublicKey | bytes | str) -> bool:
    """True iff `document` is a well-shaped receipt signed by `public_key` whose `node.keyId` names
    that key; False for anything else, never an exception."""
    try:
        key = _public_key(public_key)
        if not isinstance(document, dict) or set(document) != {"receipt", "signature"}:
            return False
        receipt, signature = document["receipt"], document["signature"]
        if (
            not isinstance(signature, str)
            or not _is_receipt(receipt)
            or receipt["node"]["keyId"] != key_id(key)
        ):
            return False
        key.verify(base64.b64decode(signature, validate=True), canonical_bytes(receipt))
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError, binascii.Error, UnicodeError):
        return False
    return True


def _is_receipt(receipt: Any) -> bool:
    """The receipt's shape, checked flat (no recursion into untrusted nesting)."""
    if not isinstance(receipt, dict) or set(receipt) - {_LAST_KNOWN_KEY} not in (
        _RECEIPT_KEYS,
        _RECEIPT_KEYS_V1,
    ):
        return False
    checks, node = receipt["checks"], receipt["node"]
    scalars = (v for k, v in receipt.items() if k not in ("checks", "node"))
    return (
        all(v is None or type(v) in (str, int) for v in scalars)
        and isinstance(checks, list)
        and all(isinstance(c, dict) and all(type(v) is str for v in c.values()) for c in checks)
        and isinstance(node, dict)
        and all(type(v) is str for v in node.values())
        and "keyId" in node
    )


def digest_request(presentation: Presentation) -> bytes:
    """sha256 of the RFC 8785 bytes of the presentation's package JSON, without the `anchor` hint."""
    package = presentation.to_json()
    package.pop("anchor", None)
    # A package is plain JSON by construction (strings, booleans, ASCII keys) but for its two
    # integers: when they are exact in IEEE 754 the fast path needs no walk over the whole package.
    if abs(presentation.chain_id) <= _SAFE_INT and abs(presentation.batch_index) <= _SAFE_INT:
        return hashlib.sha256(_plain_bytes(package)).digest()
    return hashlib.sha256(canonical_bytes(package)).digest()


def make_receipt(
    report: Report,
    *,
    request_digest: bytes,
    chain_id: int | None,
    block: int | None,
    source: str,
    region: str,
    disclosed_digest: str | None = None,
) -> dict[str, Any]:
    """The receipt body for `report`; `ReceiptSigner.sign` adds `node.keyId` and signs it.

    `request_digest` is `digest_request(presentation)`; `chain_id`, `block` and `source` say where
    the chain facts were read (None, None, "offline" when no chain was asked); `disclosed_digest`
    is `digest_disclosed` of the values answered with it (None: a receipt of the old shape).
    """
    if len(request_digest) != 32:
        raise ValueError("request_digest must be a 32-byte sha256")
    receipt = {
        "requestDigest": "0x" + request_digest.hex(),
        "verdict": report.verdict.value,
        "reason": report.reason,
        "checks": [{"kind": c.kind, "outcome": c.outcome.value, "code": c.code} for c in report.checks],
        "chainId": chain_id,
        "block": block,
        "source": source,
        "checkedAt": _utc_text(report.checked_at),
        "node": {"region": region},
    }
    if disclosed_digest is not None:
        receipt["disclosedDigest"] = disclosed_digest
    if report.last_known is not None:  # the verdict rests on the index's last-known facts
        receipt[_LAST_KNOWN_KEY] = report.last_known.age_s
    return receipt


def disclosed_values(presentation: Presentation) -> dict[str, Any]:
    """The answer's `disclosed` object: the presentation's values by path and a fresh 128-bit salt."""
    return {"salt": secrets.token_urlsafe(16), "values": presentation.values()}


def digest_disclosed(disclosed: Any) -> str:
    """`0x` and the sha256 of the RFC 8785 bytes of a `disclosed` object: the receipt's `disclosedDigest`."""
    return "0x" + hashlib.sha256(canonical_bytes(disclosed)).hexdigest()


def covers_disclosed(document: Any, disclosed: Any) -> bool:
    """True iff the receipt in `document` has a `disclosedDigest` and it is `disclosed`'s (the
    signature is `verify_receipt`'s business); False for anything else, never an exception."""
    try:
        expected = document["receipt"]["disclosedDigest"]
        return isinstance(expected, str) and hmac.compare_digest(expected, digest_disclosed(disclosed))
    except (KeyError, TypeError, ValueError, UnicodeError, rfc8785.CanonicalizationError, RecursionError):
        return False


def receipt_id(document: dict[str, Any]) -> str:
    """A signed receipt's id: the first 32 hex digits of the sha256 of its `signature` text."""
    return hashlib.sha256(document["signature"].encode("ascii")).hexdigest()[:32]


def _utc_text(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("checked_at must be timezone-aware")
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
