"""SM2/SM3 primitives of the national co-seal (docs/PROTOCOL.md, "The national co-seal").

- SM3 is GB/T 32905-2016: the system OpenSSL's (`hashlib`, ~2x faster) or else Tongsuo's.
- SM2 is GB/T 32918.2-2016 on the curve sm2p256v1 (GB/T 32918.5-2017), with the standard default
  user ID `1234567812345678` and its Z_A preprocessing: e = SM3(Z_A ‖ M). Every library we
  checked signs this way by default (tongsuopy cannot set another ID), so other parties need no
  option to verify our seals.
- Bytes at the edges: private key 32 bytes big-endian, public key 64 bytes X ‖ Y (no 0x04),
  signature 64 bytes r ‖ s (Tongsuo speaks DER: converted here and nowhere else).

This is the only module that imports tongsuopy (pinned 1.0.1, unmaintained since 2023): if it has
to be replaced, nothing else changes. Unit tests hold it to the GB/T vectors and to two
independent implementations (snowland-smx, GmSSL).
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from tongsuopy.crypto import hashes as _t_hashes
from tongsuopy.crypto.asymciphers import ec as _t_ec
from tongsuopy.crypto.exceptions import InvalidSignature

from registry.certificate.merkle import keccak

__all__ = [
    "DEFAULT_USER_ID",
    "PRIVATE_KEY_SIZE",
    "PUBLIC_KEY_SIZE",
    "SIGNATURE_SIZE",
    "generate_private_key",
    "key_id",
    "public_key",
    "sm2_sign",
    "sm2_verify",
    "sm2_z",
    "sm3",
]

DEFAULT_USER_ID = b"1234567812345678"  # GB/T 35276-2017 §10 / GM/T 0009: the default ID of SM2
PRIVATE_KEY_SIZE = 32
PUBLIC_KEY_SIZE = 64
SIGNATURE_SIZE = 64

# sm2p256v1 (GB/T 32918.5-2017 §A / GM/T 0003.5-2012), for Z_A and range checks
_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
_A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
_B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
_GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
_GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0
_CURVE_BYTES = b"".join(v.to_bytes(32, "big") for v in (_A, _B, _GX, _GY))

_SM2 = _t_ec.SM2()
_ALGORITHM = _t_ec.ECDSA(_t_hashes.SM3())  # Tongsuo: SM2 with SM3 and Z_A of the default ID

if "sm3" in hashlib.algorithms_available:
    # `hashlib.new("sm3")` fetches the digest from OpenSSL on every call (hashlib keeps only its
    # own named digests, MD5/SHA/BLAKE2, fetched): copying a fresh context costs a third less, and
    # a co-seal group hashes ~130 times. Only the copies are updated, so threads share it safely.
    _SM3 = hashlib.new("sm3")

    def sm3(data: bytes) -> bytes:
        """SM3 (GB/T 32905-2016), 32 bytes."""
        h = _SM3.copy()
        h.update(data)
        return h.digest()

else:  # pragma: no cover - an OpenSSL built without SM3

    def sm3(data: bytes) -> bytes:
        """SM3 (GB/T 32905-2016), 32 bytes."""
        h = _t_hashes.Hash(_t_hashes.SM3())
        h.update(bytes(data))
        return bytes(h.finalize())


def _private_value(private: bytes) -> int:
    """d as an integer; SM2 needs 1 <= d <= n-2 ((1+d) must be invertible mod n), which Tongsuo
    does not check for n-1."""
    if not isinstance(private, (bytes, bytearray)) or len(private) != PRIVATE_KEY_SIZE:
        raise ValueError("an SM2 private key is 32 bytes")
    d = int.from_bytes(private, "big")
    if not 1 <= d <= _N - 2:
        raise ValueError("SM2 private key out of range [1, n-2]")
    return d


@lru_cache(maxsize=16)
def _signer(private: bytes) -> _t_ec.EllipticCurvePrivateKey:
    # Deriving Tongsuo's key object computes dG and costs about half a signature: keep a few.
    return _t_ec.derive_private_key(_private_value(private), _SM2)


@lru_cache(maxsize=256)
def _verifier(public: bytes) -> _t_ec.EllipticCurvePublicKey | None:
    # Keys come from the trust registry (a handful per agency), so a small cache serves them all.
    try:
        return _t_ec.EllipticCurvePublicKey.from_encoded_point(_SM2, b"\x04" + public)
    except ValueError:  # not a point of sm2p256v1
        return None


def generate_private_key() -> bytes:
    """A fresh private key d (uniform in [1, n-2], from the OS's CSPRNG), 32 bytes big-endian."""
    while True:
        d = int.from_bytes(os.urandom(PRIVATE_KEY_SIZE), "big")
        if 1 <= d <= _N - 2:
            return d.to_bytes(PRIVATE_KEY_SIZE, "big")


def public_key(private: bytes) -> bytes:
    """P = dG as 64 bytes X ‖ Y (ValueError for a malformed private key)."""
    numbers = _signer(bytes(private)).public_key().public_numbers()
    return numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")


def key_id(public: bytes) -> bytes:
    """keccak256(X ‖ Y), the bytes32 by which the trust registry names an SM2 key."""
    if not isinstance(public, (bytes, bytearray)) or len(public) != PUBLIC_KEY_SIZE:
        raise ValueError("an SM2 public key is 64 bytes X ‖ Y")
    return keccak(bytes(public))


def sm2_z(public: bytes, user_id: bytes = DEFAULT_USER_ID) -> bytes:
    """Z_A = SM3(ENTL_A ‖ ID_A ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A) (GB/T 32918.2-2016 §5.5), for tests
    and documentation: signing and verifying compute it inside Tongsuo."""
    if len(public) != PUBLIC_KEY_SIZE or len(user_id) >= 8192:
        raise ValueError("a 64-byte public key and an ID under 8192 bytes are expected")
    return sm3((len(user_id) * 8).to_bytes(2, "big") + user_id + _CURVE_BYTES + bytes(public))


def sm2_sign(private: bytes, message: bytes) -> bytes:
    """SM2 signature of `message` (e = SM3(Z_A ‖ M), default ID) as 64 bytes r ‖ s.

    Randomised (a fresh k per signature, from Tongsuo's CSPRNG): two signatures of one message
    differ, and both verify.
    """
    der = _signer(bytes(private)).sign(bytes(message), _ALGORITHM)
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def sm2_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """True iff `signature` (r ‖ s) is the SM2 signature of `message` under `public` (X ‖ Y) with the
    default ID. False, never an exception, for anything malformed: wrong types or sizes, a point
    off the curve, r or s outside [1, n-1]."""
    if not (
        isinstance(public, (bytes, bytearray))
        and isinstance(message, (bytes, bytearray))
        and isinstance(signature, (bytes, bytearray))
        and len(public) == PUBLIC_KEY_SIZE
        and len(signature) == SIGNATURE_SIZE
    ):
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not (1 <= r < _N and 1 <= s < _N):
        return False
    key = _verifier(bytes(public))
    if key is None:
        return False
    try:
        key.verify(encode_dss_signature(r, s), bytes(message), _ALGORITHM)
    except InvalidSignature:
        return False
    return True
