"""SM2/SM3 of the national co-seal: the GB/T vectors, two independent implementations (snowland-smx,
pure Python; GmSSL through gmssl-pyx) both ways, tampering, malformed input, and the group seal."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import gmssl_pyx  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from pysmx.SM2 import Sign as smx_sign  # type: ignore[import-untyped]
from pysmx.SM2 import Verify as smx_verify
from pysmx.SM2 import get_za as smx_za
from pysmx.SM2 import kG as smx_kg
from pysmx.SM2 import sm2_G as SMX_G
from pysmx.SM3 import digest as smx_sm3  # type: ignore[import-untyped]

from registry import national
from registry.certificate.merkle import keccak
from registry.certificate.national_seal import (
    MAX_PROOF_ITEMS,
    SEAL_DOMAIN,
    NationalSeal,
    check_seal,
    group_tree,
    root_from_proof,
    seal_group,
    seal_leaf,
    seal_message,
    seal_node,
)
from registry.errors import CertificateError

ID = b"1234567812345678"
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"

# GB/T 32918.5-2017 Annex A (= GM/T 0003.5-2012 A.2): sm2p256v1, ID 1234567812345678
ANNEX_M = b"message digest"
ANNEX_D = bytes.fromhex("3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8")
ANNEX_PUB = bytes.fromhex(
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13"
)
ANNEX_K = "59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21"
ANNEX_Z = bytes.fromhex("B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3")
ANNEX_E = bytes.fromhex("F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640")
ANNEX_RS = bytes.fromhex(
    "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
    "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
)


def _der(rs: bytes) -> bytes:
    return encode_dss_signature(int.from_bytes(rs[:32], "big"), int.from_bytes(rs[32:], "big"))


def _raw(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# ─── SM3 (GB/T 32905-2016, Appendix A) ───────────────────────────────────────────────────


def test_sm3_standard_examples() -> None:
    assert national.sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert (
        national.sm3(b"abcd" * 16).hex() == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    )


def test_sm3_agrees_with_two_other_implementations() -> None:
    for size in (0, 1, 55, 56, 63, 64, 65, 85, 1000):
        data = secrets.token_bytes(size)
        assert national.sm3(data) == smx_sm3(data) == gmssl_pyx.sm3_hash(data)


# ─── SM2 against the GB/T 32918.5-2017 Annex A example ───────────────────────────────────


def test_annex_a_public_key_z_and_e() -> None:
    assert national.public_key(ANNEX_D) == ANNEX_PUB
    assert national.sm2_z(ANNEX_PUB) == ANNEX_Z
    assert national.sm3(national.sm2_z(ANNEX_PUB) + ANNEX_M) == ANNEX_E


def test_annex_a_published_signature_verifies() -> None:
    assert national.sm2_verify(ANNEX_PUB, ANNEX_M, ANNEX_RS)
    assert not national.sm2_verify(ANNEX_PUB, b"message digesT", ANNEX_RS)
    # the independent implementation reproduces the published (r, s) from k, so the vector is sound
    assert smx_sign(ANNEX_M, ANNEX_D.hex(), ANNEX_K, 64, uid=ID) == ANNEX_RS


def test_our_annex_key_signatures_verify_under_the_published_key() -> None:
    signature = national.sm2_sign(ANNEX_D, ANNEX_M)
    assert len(signature) == 64 and signature != ANNEX_RS  # a fresh k
    assert national.sm2_verify(ANNEX_PUB, ANNEX_M, signature)


# ─── cross-checks with independent implementations ──────────────────────────────────────


@pytest.mark.parametrize("round_", range(6))
def test_cross_verification_both_ways(round_: int) -> None:
    private = national.generate_private_key()
    public = national.public_key(private)
    message = secrets.token_bytes(secrets.choice([0, 1, 32, 53, 200]))
    assert smx_kg(int.from_bytes(private, "big"), SMX_G, 64) == public.hex()
    assert smx_za(ID, public.hex()) == national.sm2_z(public).hex()

    ours = national.sm2_sign(private, message)
    assert national.sm2_verify(public, message, ours)
    assert smx_verify(ours, message, public.hex(), 64, uid=ID)
    assert gmssl_pyx.sm2_verify(public, message, _der(ours), signer_id=ID)

    k = (secrets.randbelow(N - 1) + 1).to_bytes(32, "big").hex()
    by_smx = smx_sign(message, private.hex(), k, 64, uid=ID)
    by_gmssl = _raw(gmssl_pyx.sm2_sign(private, public, message, signer_id=ID))
    assert national.sm2_verify(public, message, by_smx)
    assert national.sm2_verify(public, message, by_gmssl)


def test_a_key_made_by_gmssl_works_here() -> None:
    public, private = gmssl_pyx.sm2_key_generate()
    assert national.public_key(private) == public
    assert national.sm2_verify(public, b"m", national.sm2_sign(private, b"m"))


def test_signatures_are_randomised_and_key_id_is_keccak() -> None:
    private = national.generate_private_key()
    public = national.public_key(private)
    assert national.sm2_sign(private, b"m") != national.sm2_sign(private, b"m")
    assert national.key_id(public) == keccak(public)
    assert len(national.key_id(public)) == 32


def test_one_cached_key_signs_from_many_threads() -> None:
    """The issuer's pool threads share the cached Tongsuo key object (a fresh context per call)."""
    private = national.generate_private_key()
    public = national.public_key(private)
    messages = [secrets.token_bytes(32) for _ in range(200)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        signatures = list(pool.map(lambda m: national.sm2_sign(private, m), messages))
        checks = list(
            pool.map(lambda ms: national.sm2_verify(public, *ms), zip(messages, signatures, strict=True))
        )
    assert all(checks)
    assert all(smx_verify(signatures[i], messages[i], public.hex(), 64, uid=ID) for i in range(5))


# ─── tampering and malformed input ──────────────────────────────────────────────────────


def test_tampering_fails() -> None:
    private = national.generate_private_key()
    public = national.public_key(private)
    message = secrets.token_bytes(53)
    signature = national.sm2_sign(private, message)
    for bit in (0, 7, 200, 423):
        assert not national.sm2_verify(public, _flip(message, bit), signature)
    for bit in (0, 255, 256, 511):
        assert not national.sm2_verify(public, message, _flip(signature, bit))
    other = national.public_key(national.generate_private_key())
    assert not national.sm2_verify(other, message, signature)
    # a signature under another user ID (same key, same message) is not ours
    foreign = smx_sign(message, private.hex(), "11" * 32, 64, uid=b"ALICE123@YAHOO.COM")
    assert smx_verify(foreign, message, public.hex(), 64, uid=b"ALICE123@YAHOO.COM")
    assert not national.sm2_verify(public, message, foreign)


def test_malformed_inputs_return_false() -> None:
    private = national.generate_private_key()
    public = national.public_key(private)
    signature = national.sm2_sign(private, b"m")
    n_bytes = N.to_bytes(32, "big")
    off_curve = public[:63] + bytes([public[63] ^ 1])
    cases: list[tuple[object, object, object]] = [
        (public[:63], b"m", signature),
        (b"\x04" + public, b"m", signature),
        (off_curve, b"m", signature),
        (bytes(64), b"m", signature),
        (public.hex(), b"m", signature),
        (None, b"m", signature),
        (public, "m", signature),
        (public, None, signature),
        (public, b"m", signature[:63]),
        (public, b"m", signature + b"\x00"),
        (public, b"m", _der(signature)),
        (public, b"m", signature.hex()),
        (public, b"m", bytes(64)),  # r = s = 0
        (public, b"m", n_bytes + signature[32:]),  # r = n
        (public, b"m", signature[:32] + n_bytes),  # s = n
        (public, b"m", b"\xff" * 64),
        (public, b"m", 12345),
    ]
    for key, message, sig in cases:
        assert national.sm2_verify(key, message, sig) is False  # type: ignore[arg-type]


def test_private_key_range_is_checked() -> None:
    for bad in (bytes(32), (N - 1).to_bytes(32, "big"), N.to_bytes(32, "big"), b"\x01" * 31, b"\xff" * 32):
        with pytest.raises(ValueError):
            national.public_key(bad)
        with pytest.raises(ValueError):
            national.sm2_sign(bad, b"m")
    assert len(national.public_key((N - 2).to_bytes(32, "big"))) == 64
    with pytest.raises(ValueError):
        national.key_id(b"\x04" + bytes(64))


# ─── the group tree ──────────────────────────────────────────────────────────────────────


def _leaves(n: int) -> list[bytes]:
    return [seal_leaf(31337, REGISTRY, secrets.token_bytes(32)) for _ in range(n)]


def _reference_root(leaves: list[bytes]) -> bytes:
    """The spec's levels, written plainly: pair neighbours, carry an odd last node up."""
    level = list(leaves)
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), 2):
            if i + 1 < len(level):
                a, b = sorted((level[i], level[i + 1]))
                nxt.append(national.sm3(b"\x01" + a + b))
            else:
                nxt.append(level[i])
        level = nxt
    return level[0]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 64, 65])
def test_group_tree_proofs(size: int) -> None:
    leaves = _leaves(size)
    root, proofs = group_tree(leaves)
    assert root == _reference_root(leaves)
    assert len(proofs) == size
    for i, (leaf, proof) in enumerate(zip(leaves, proofs, strict=True)):
        assert root_from_proof(leaf, proof) == root
        assert len(proof) <= max(1, (size - 1).bit_length())
        if size > 1:
            other = proofs[(i + 1) % size]
            assert root_from_proof(leaf, other) != root
    if size == 1:
        assert root == leaves[0] and proofs == [()]


def test_odd_last_node_is_carried_up() -> None:
    leaves = _leaves(3)
    root, proofs = group_tree(leaves)
    pair = seal_node(leaves[0], leaves[1])
    assert root == seal_node(pair, leaves[2])
    assert proofs[2] == (pair,)  # no sibling at the first level
    assert proofs[0] == (leaves[1], leaves[2])
    leaves65 = _leaves(65)
    _, proofs65 = group_tree(leaves65)
    assert len(proofs65[64]) == 1 and len(proofs65[0]) == 7  # 65th leaf: carried six times


def test_node_is_sorted_and_domain_separated() -> None:
    a, b = secrets.token_bytes(32), secrets.token_bytes(32)
    assert seal_node(a, b) == seal_node(b, a) == national.sm3(b"\x01" + min(a, b) + max(a, b))
    digest = bytes(range(32))
    expected = national.sm3(b"\x00" + (31337).to_bytes(32, "big") + bytes.fromhex(REGISTRY[2:]) + digest)
    assert seal_leaf(31337, REGISTRY, digest) == expected
    assert seal_leaf(31337, bytes.fromhex(REGISTRY[2:]), digest) == expected
    assert seal_leaf(31337, REGISTRY.lower(), digest) == expected
    assert seal_message(b"\x22" * 32) == b"ecert-national-seal/1" + b"\x22" * 32
    assert len(SEAL_DOMAIN) == 21


def test_group_tree_refuses_bad_leaves() -> None:
    with pytest.raises(ValueError):
        group_tree([])
    with pytest.raises(ValueError):
        group_tree([b"\x00" * 31])
    bad: list[tuple[Any, Any, Any]] = [
        (-1, REGISTRY, bytes(32)),
        (2**256, REGISTRY, bytes(32)),
        (True, REGISTRY, bytes(32)),
        (1, REGISTRY[:-1], bytes(32)),
        (1, "5FbDB2315678afecb367f032d93F642f64180aa3", bytes(32)),
        (1, bytes(19), bytes(32)),
        (1, REGISTRY, bytes(31)),
    ]
    for chain_id, registry, digest in bad:
        with pytest.raises(ValueError):
            seal_leaf(chain_id, registry, digest)


# ─── the group seal ──────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("size", [1, 2, 3, 64, 65])
def test_seal_group_every_certificate_checks(size: int) -> None:
    private = national.generate_private_key()
    public = national.public_key(private)
    other = national.public_key(national.generate_private_key())
    digests = [secrets.token_bytes(32) for _ in range(size)]
    seals = seal_group(private, 31337, REGISTRY, digests)
    assert len(seals) == size
    assert len({s.signature for s in seals}) == 1  # one signature per group
    for digest, seal in zip(digests, seals, strict=True):
        assert check_seal([other, public], 31337, REGISTRY, digest, seal) == public
        assert check_seal([other], 31337, REGISTRY, digest, seal) is None
    # the signature covers the root: independent verifiers agree
    root = root_from_proof(seal_leaf(31337, REGISTRY, digests[0]), seals[0].proof)
    assert smx_verify(seals[0].signature, seal_message(root), public.hex(), 64, uid=ID)
    assert gmssl_pyx.sm2_verify(public, seal_message(root), _der(seals[0].signature), signer_id=ID)


def test_seal_binds_chain_registry_and_digest() -> None:
    private = national.generate_private_key()
    public = national.public_key(private)
    digests = [secrets.token_bytes(32) for _ in range(5)]
    seals = seal_group(private, 31337, REGISTRY, digests)
    digest, seal = digests[2], seals[2]
    assert check_seal([public], 31337, REGISTRY, digest, seal) == public
    other_registry = "0x" + "11" * 20
    assert check_seal([public], 1, REGISTRY, digest, seal) is None
    assert check_seal([public], 31337, other_registry, digest, seal) is None
    assert check_seal([public], 31337, REGISTRY, _flip(digest, 3), seal) is None
    assert check_seal([public], 31337, REGISTRY, digests[3], seal) is None  # another's proof
    assert check_seal([public], 31337, REGISTRY, digest, seals[3]) is None
    tampered_sig = NationalSeal(_flip(seal.signature, 9), seal.proof)
    assert check_seal([public], 31337, REGISTRY, digest, tampered_sig) is None
    tampered_proof = NationalSeal(seal.signature, (_flip(seal.proof[0], 0), *seal.proof[1:]))
    assert check_seal([public], 31337, REGISTRY, digest, tampered_proof) is None
    assert (
        check_seal([public], 31337, REGISTRY, digest, NationalSeal(seal.signature, seal.proof[:-1])) is None
    )
    # malformed context and junk keys: None, no exception
    assert check_seal([public], -1, REGISTRY, digest, seal) is None
    assert check_seal([public], 31337, "nope", digest, seal) is None
    assert check_seal([public], 31337, REGISTRY, b"short", seal) is None
    assert check_seal([b"", bytes(64), public[:10]], 31337, REGISTRY, digest, seal) is None
    assert check_seal([], 31337, REGISTRY, digest, seal) is None
    assert seal_group(private, 31337, REGISTRY, []) == []


def test_national_seal_json_and_cbor_forms() -> None:
    private = national.generate_private_key()
    seal = seal_group(private, 31337, REGISTRY, [secrets.token_bytes(32) for _ in range(3)])[0]
    data = seal.to_json()
    assert set(data) == {"signature", "proof"}
    assert data["signature"].startswith("0x") and len(data["signature"]) == 130
    assert NationalSeal.from_json(data) == seal
    assert NationalSeal.from_cbor(seal.to_cbor()) == seal
    good_sig, good_item = data["signature"], "0x" + "ab" * 32
    hostile: list[object] = [
        None,
        [],
        {"signature": good_sig},
        {"signature": good_sig, "proof": [], "keyId": "0x00"},
        {"signature": good_sig[:-2], "proof": []},
        {"signature": good_sig + "00", "proof": []},
        {"signature": good_sig[2:], "proof": []},
        {"signature": "0x" + "zz" * 64, "proof": []},
        {"signature": 5, "proof": []},
        {"signature": good_sig, "proof": good_item},
        {"signature": good_sig, "proof": [good_item[:-2]]},
        {"signature": good_sig, "proof": [7]},
        {"signature": good_sig, "proof": [good_item] * (MAX_PROOF_ITEMS + 1)},
    ]
    for value in hostile:
        with pytest.raises(CertificateError) as info:
            NationalSeal.from_json(value)
        assert info.value.code.name == "CERT_MALFORMED"
    assert NationalSeal.from_json({"signature": good_sig, "proof": [good_item] * MAX_PROOF_ITEMS})


def test_protocol_worked_example() -> None:
    """docs/PROTOCOL.md §12's example, value for value."""
    d = bytes.fromhex("11" * 32)
    public = national.public_key(d)
    registry = "0x5Fbdb2315678AFecb367F032349f13BB0A1e4C5a"
    assert public.hex() == (
        "852611f744af045689dcfbf4c0437730d2d2de332ab7f0fc02769c5fab8a8943"
        "7d9384f19ab882ed668a28936db92475aa79aef8690ee36f6fb77c69b9b571f8"
    )
    assert national.key_id(public).hex() == "2c550c117020fb1c9905ec453adf9a2d13480815fc51bb6d06417c2feabfae52"
    assert national.sm2_z(public).hex() == "f61d536267b7afc68422c640aed5ec52331283783c41a8e63721fc7f39be43c6"
    digests = [bytes(32), bytes.fromhex("11" * 32), bytes.fromhex("22" * 32)]
    leaves = [seal_leaf(31337, registry, digest) for digest in digests]
    assert [leaf.hex() for leaf in leaves] == [
        "76fd28ab0015b64c85b0ab81018fe6457a0840d8c56d46ee3bec55474f0677c0",
        "36d6c58698005f492f428354c271242b643a8fc28628e92420daa42a749fedd1",
        "45d7f53417f581a8f647270840b3b18b1c5351b36809d137f1a0be96067f5eb8",
    ]
    root, proofs = group_tree(leaves)
    pair = seal_node(leaves[0], leaves[1])
    assert pair.hex() == "40de74fc8d6d4ae58b8c510bf40ece8c63ba3d0f414183ace5d4ebf911c3685e"
    assert root.hex() == "c5aa16b8333c9c27ae8e266806f3d3a9a7fc1352dd8353f2be4508cd2d338274"
    assert proofs == [(leaves[1], leaves[2]), (leaves[0], leaves[2]), (pair,)]
    message = seal_message(root)
    assert message.hex() == "65636572742d6e6174696f6e616c2d7365616c2f31" + root.hex() and len(message) == 53
    e = national.sm3(national.sm2_z(public) + message)
    assert e.hex() == "ad32d962595ce87543eb21efc40197b72bf1c6a87bc7a7ef23a8affcca0ccc9f"
    signature = bytes.fromhex(
        "f19abf6698954cd3b7eb72e39acb6e57eb5cda7c31403a734f9267599449b523"
        "4f9e4412c1f25239196df77970d024e86655eca56d5e15b20bed8535a62c7ffe"
    )
    assert smx_sign(message, d.hex(), "22" * 32, 64, uid=ID) == signature
    assert national.sm2_verify(public, message, signature)
    assert gmssl_pyx.sm2_verify(public, message, _der(signature), signer_id=ID)
    seal = NationalSeal(signature, proofs[2])
    assert check_seal([public], 31337, registry, digests[2], seal) == public
    assert seal.to_json() == {
        "signature": "0x" + signature.hex(),
        "proof": ["0x40de74fc8d6d4ae58b8c510bf40ece8c63ba3d0f414183ace5d4ebf911c3685e"],
    }
