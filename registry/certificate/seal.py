"""The agency seal: an EIP-712 signature over `Certificate(bytes32 digest)` (DESIGN.md §3).

Domain `{name: "ecert", version: "1", chainId, verifyingContract}` binds the seal to one registry,
so it cannot be replayed against another chain or deployment. We hash and sign with coincurve
directly instead of eth-account (~10x faster at issuance); tests check the bytes against
eth-account and ethers.
"""

from __future__ import annotations

import re
from functools import lru_cache

from coincurve import PrivateKey, PublicKey

from registry.certificate.merkle import keccak
from registry.error_codes import ErrorCode
from registry.errors import CertificateError, TamperedError

EIP712_DOMAIN_TYPEHASH = keccak(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
CERTIFICATE_TYPEHASH = keccak(b"Certificate(bytes32 digest)")
_NAME_HASH = keccak(b"ecert")
_VERSION_HASH = keccak(b"1")
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = _SECP256K1_N // 2
_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")


@lru_cache(maxsize=256, typed=True)
def domain_separator(chain_id: int, verifying_contract: str) -> bytes:
    """EIP-712 domain separator, cached: it is the same for every certificate of a registry."""
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or not 0 <= chain_id < 2**256:
        raise CertificateError("chainId must be a uint256", code=ErrorCode.CERT_MALFORMED, chain_id=chain_id)
    if not isinstance(verifying_contract, str) or not _ADDRESS_RE.fullmatch(verifying_contract):
        raise CertificateError("verifyingContract must be a 0x address", code=ErrorCode.CERT_MALFORMED)
    return keccak(
        EIP712_DOMAIN_TYPEHASH
        + _NAME_HASH
        + _VERSION_HASH
        + chain_id.to_bytes(32, "big")
        + bytes(12)
        + bytes.fromhex(verifying_contract[2:])
    )


def seal_hash(chain_id: int, verifying_contract: str, digest: bytes) -> bytes:
    """`keccak256("\\x19\\x01" ‖ domainSeparator ‖ hashStruct(Certificate{digest}))`."""
    if not isinstance(digest, (bytes, bytearray)) or len(digest) != 32:
        raise CertificateError("digest must be 32 bytes", code=ErrorCode.CERT_MALFORMED)
    struct_hash = keccak(CERTIFICATE_TYPEHASH + bytes(digest))
    return keccak(b"\x19\x01" + domain_separator(chain_id, verifying_contract) + struct_hash)


@lru_cache(maxsize=16)
def _signer(private_key: bytes) -> PrivateKey:
    # Building a PrivateKey derives its public key (~40 us, as long as signing): keep a few.
    return PrivateKey(private_key)


def sign_seal(private_key: bytes, chain_id: int, verifying_contract: str, digest: bytes) -> bytes:
    """65-byte r‖s‖v signature, low-s (libsecp256k1 normalises), v in {27, 28}."""
    sig = _signer(bytes(private_key)).sign_recoverable(
        seal_hash(chain_id, verifying_contract, digest), hasher=None
    )
    return sig[:64] + bytes((sig[64] + 27,))


def recover_sealer(chain_id: int, verifying_contract: str, digest: bytes, signature: bytes) -> str:
    """EIP-55 address that made `signature`; TamperedError(SEAL_INVALID) if it is no valid seal.

    High-s and v outside {27, 28} are refused, as OpenZeppelin's ECDSA.recover refuses them, so a
    seal has one byte form only.
    """
    h = seal_hash(chain_id, verifying_contract, digest)
    if not isinstance(signature, (bytes, bytearray)) or len(signature) != 65:
        raise TamperedError("seal must be 65 bytes r‖s‖v", code=ErrorCode.SEAL_INVALID)
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28):
        raise TamperedError("seal v must be 27 or 28", code=ErrorCode.SEAL_INVALID)
    if not (0 < r < _SECP256K1_N and 0 < s <= _HALF_N):
        raise TamperedError("seal r or s out of range (high-s is refused)", code=ErrorCode.SEAL_INVALID)
    try:
        public = PublicKey.from_signature_and_message(
            bytes(signature[:64]) + bytes((v - 27,)), h, hasher=None
        )
    except ValueError as e:  # coincurve: "failed to recover ECDSA public key" (r is no curve point)
        raise TamperedError("seal does not recover to a public key", code=ErrorCode.SEAL_INVALID) from e
    return _address(public)


def _address(public: PublicKey) -> str:
    return to_checksum_address(keccak(public.format(compressed=False)[1:])[12:])


@lru_cache(maxsize=4096)  # a verifier recovers the same few agency keys over and over
def to_checksum_address(raw: bytes) -> str:
    """EIP-55 mixed-case hex of a 20-byte address."""
    hexaddr = raw.hex()
    mask = keccak(hexaddr.encode()).hex()
    return "0x" + "".join(c.upper() if m >= "8" else c for c, m in zip(hexaddr, mask, strict=False))


def address_of(private_key: bytes) -> str:
    """EIP-55 address of a secp256k1 private key."""
    return _address(_signer(bytes(private_key)).public_key)
