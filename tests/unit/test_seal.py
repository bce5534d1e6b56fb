"""EIP-712 seal: our coincurve hashing and signing give eth-account's bytes; bad seals are refused."""

from __future__ import annotations

import os
import random

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_utils import to_checksum_address as eth_utils_checksum
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.certificate.merkle import keccak
from registry.certificate.seal import (
    CERTIFICATE_TYPEHASH,
    address_of,
    domain_separator,
    recover_sealer,
    seal_hash,
    sign_seal,
    to_checksum_address,
)
from registry.errors import CertificateError, TamperedError

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def _key(rng: random.Random) -> bytes:
    return (rng.randrange(1, N)).to_bytes(32, "big")


def _typed(chain_id: int, contract: str, digest: bytes) -> dict:  # type: ignore[type-arg]
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Certificate": [{"name": "digest", "type": "bytes32"}],
        },
        "primaryType": "Certificate",
        "domain": {"name": "ecert", "version": "1", "chainId": chain_id, "verifyingContract": contract},
        "message": {"digest": digest},
    }


def test_typehash() -> None:
    assert keccak(b"Certificate(bytes32 digest)") == CERTIFICATE_TYPEHASH


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 2**64),
    st.binary(min_size=20, max_size=20),
    st.binary(min_size=32, max_size=32),
    st.integers(0, 2**32),
)
def test_hash_and_signature_equal_eth_account(
    chain_id: int, contract_raw: bytes, digest: bytes, seed: int
) -> None:
    contract = to_checksum_address(contract_raw)
    key = _key(random.Random(seed))
    expected_hash = _hash_eip191_message(encode_typed_data(full_message=_typed(chain_id, contract, digest)))
    assert seal_hash(chain_id, contract, digest) == expected_hash
    signed = Account.sign_typed_data(key, full_message=_typed(chain_id, contract, digest))
    ours = sign_seal(key, chain_id, contract, digest)
    assert ours == bytes(signed.signature)  # both RFC 6979 and low-s: byte-identical
    assert (
        recover_sealer(chain_id, contract, digest, ours) == address_of(key) == Account.from_key(key).address
    )


def test_sign_recover_round_trip_and_binding() -> None:
    rng = random.Random(712)
    key, digest = _key(rng), rng.randbytes(32)
    sig = sign_seal(key, 31337, CONTRACT, digest)
    assert len(sig) == 65 and sig[64] in (27, 28)
    assert int.from_bytes(sig[32:64], "big") <= N // 2
    sealer = address_of(key)
    assert recover_sealer(31337, CONTRACT, digest, sig) == sealer
    assert recover_sealer(31337, CONTRACT.lower(), digest, sig) == sealer
    # a seal binds digest, chain and registry: change any and it names somebody else
    other_digest = bytes([digest[0] ^ 1]) + digest[1:]
    assert recover_sealer(31337, CONTRACT, other_digest, sig) != sealer
    assert recover_sealer(1, CONTRACT, digest, sig) != sealer
    assert recover_sealer(31337, "0x" + "11" * 20, digest, sig) != sealer


def _assert_seal_invalid(signature: object, digest: bytes = bytes(32)) -> None:
    with pytest.raises(TamperedError) as e:
        recover_sealer(1, CONTRACT, digest, signature)  # type: ignore[arg-type]
    assert e.value.code == "SEAL_INVALID"


def test_malformed_seals_are_refused() -> None:
    key, digest = _key(random.Random(3)), os.urandom(32)
    sig = sign_seal(key, 1, CONTRACT, digest)
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    high_s = r + (N - s).to_bytes(32, "big") + bytes((55 - v,))  # same point, the malleable twin
    _assert_seal_invalid(high_s, digest)
    _assert_seal_invalid(sig[:64] + bytes((v - 27,)), digest)  # v in {0, 1}
    _assert_seal_invalid(sig[:64] + bytes((29,)), digest)
    _assert_seal_invalid(sig[:64], digest)
    _assert_seal_invalid(sig + b"\x00", digest)
    _assert_seal_invalid(bytes(32) + sig[32:], digest)  # r = 0
    _assert_seal_invalid(N.to_bytes(32, "big") + sig[32:], digest)  # r = n
    _assert_seal_invalid(r + bytes(32) + sig[64:], digest)  # s = 0
    _assert_seal_invalid("0x" + sig.hex(), digest)
    # r that is no x coordinate on the curve (x = 5: 5^3 + 7 = 132 is no square mod p)
    _assert_seal_invalid((5).to_bytes(32, "big") + sig[32:], digest)


def test_bad_domain_or_digest_is_malformed() -> None:
    for chain_id, contract in (
        (1, "0x1234"),
        (1, "5FbDB2315678afecb367f032d93F642f64180aa3"),
        (-1, CONTRACT),
        (True, CONTRACT),
    ):
        with pytest.raises(CertificateError) as e:
            domain_separator(chain_id, contract)
        assert e.value.code == "CERT_MALFORMED"
    with pytest.raises(CertificateError):
        seal_hash(1, CONTRACT, bytes(31))


def test_domain_separator_is_cached() -> None:
    domain_separator.cache_clear()
    first = domain_separator(5, CONTRACT)
    assert domain_separator(5, CONTRACT) is first
    assert domain_separator.cache_info().hits == 1


def test_bad_private_key() -> None:
    with pytest.raises(ValueError):
        sign_seal(bytes(32), 1, CONTRACT, bytes(32))


def test_checksum_vectors() -> None:
    for addr in (  # EIP-55 test vectors
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ):
        assert to_checksum_address(bytes.fromhex(addr[2:])) == addr


@given(st.binary(min_size=20, max_size=20))
def test_checksum_equals_eth_utils(raw: bytes) -> None:
    assert to_checksum_address(raw) == eth_utils_checksum("0x" + raw.hex())
