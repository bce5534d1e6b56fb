"""The national co-seal in packages: JSON key `nationalSeal`, EC1 key 11, disclosures, the receipt's
request digest, and packages from before the co-seal."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import zlib
from typing import Any

import base45
import cbor2
import pytest
from eth_account import Account

from issuer.batch import IssuedBatch, build_batch, serial_numbers
from registry import national
from registry.certificate.model import Issuer
from registry.certificate.national_seal import MAX_PROOF_ITEMS, NationalSeal, check_seal, seal_group
from registry.certificate.presentation import Presentation, batch_presentations
from registry.errors import CertificateError
from verifier.inputs import presentation_from_text
from verifier.receipts import digest_request

ISSUER = Issuer("杭州市市场监督管理局", "11330100002493028E", "330100")
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CHAIN_ID = 31337
PRIVATE = national.generate_private_key()
PUBLIC = national.public_key(PRIVATE)


def _batch(size: int) -> IssuedBatch:
    rng = random.Random(size)
    records = [
        {
            "holder": {"name": f"持证人{i}", "code": "11010519491231002X"},
            "validUntil": "2031-01-01",
            "ext": {"scope": ["餐饮", "零售"], "n": i},
        }
        for i in range(size)
    ]
    return build_batch(
        records, type_code="11100000000013338W001", type_name="营业执照", issuer=ISSUER,
        signing_key=bytes(Account.create().key), chain_id=CHAIN_ID, registry=REGISTRY,
        serials=serial_numbers("N"), salt_source=rng.randbytes, today=dt.date(2026, 12, 4),
    )  # fmt: skip


@pytest.fixture(scope="module")
def sealed() -> list[Presentation]:
    """64 certificates, one seal group of 64 (the default group size)."""
    batch = _batch(64)
    seals = seal_group(PRIVATE, CHAIN_ID, REGISTRY, [p.digest for p in batch.presentations])
    return [dataclasses.replace(p, national_seal=s) for p, s in zip(batch.presentations, seals, strict=True)]


def _compact(text: str) -> dict[int, Any]:
    compact: dict[int, Any] = cbor2.loads(zlib.decompress(base45.b45decode(text[4:])))
    return compact


def _ec1(compact: dict[int, Any]) -> str:
    encoded: bytes = base45.b45encode(zlib.compress(cbor2.dumps(compact), 9))
    return "EC1:" + encoded.decode("ascii")


def test_json_round_trip_keeps_the_seal(sealed: list[Presentation]) -> None:
    for presentation in sealed[:5]:
        data = json.loads(json.dumps(presentation.to_json()))
        assert data["nationalSeal"] == {
            "signature": "0x" + presentation.national_seal.signature.hex(),  # type: ignore[union-attr]
            "proof": ["0x" + p.hex() for p in presentation.national_seal.proof],  # type: ignore[union-attr]
        }
        again = Presentation.from_json(data)
        assert again == presentation and again.national_seal == presentation.national_seal
        assert presentation_from_text(json.dumps(data)) == presentation


def test_ec1_round_trip_with_the_seal_appended_last(sealed: list[Presentation]) -> None:
    presentation = sealed[7]
    text = presentation.to_ec1()
    compact = _compact(text)
    assert list(compact) == [1, 2, 3, 10, 4, 5, 6, 7, 11]
    seal = presentation.national_seal
    assert seal is not None and compact[11] == [seal.signature, list(seal.proof)]
    again = Presentation.from_ec1(text)
    assert again == presentation and again.to_ec1() == text
    disclosed = presentation.disclose(["holder.name"])
    assert list(_compact(disclosed.to_ec1())) == [1, 2, 3, 10, 4, 5, 6, 7, 8, 9, 11]
    assert Presentation.from_ec1(disclosed.to_ec1()) == disclosed


def test_disclosure_keeps_the_seal_and_it_still_checks(sealed: list[Presentation]) -> None:
    full = sealed[3]
    disclosed = full.disclose(["validUntil"])
    assert disclosed.is_partial and disclosed.national_seal == full.national_seal
    parsed = Presentation.from_ec1(disclosed.to_ec1())
    assert parsed.national_seal is not None
    key = check_seal(
        [PUBLIC], parsed.chain_id, parsed.registry, parsed.computed_digest(), parsed.national_seal
    )
    assert key == PUBLIC
    from_json = Presentation.from_json(disclosed.to_json())
    assert from_json.national_seal == full.national_seal


def test_packages_without_the_seal_are_unchanged(sealed: list[Presentation]) -> None:
    plain = dataclasses.replace(sealed[0], national_seal=None)
    data = plain.to_json()
    assert "nationalSeal" not in data
    assert Presentation.from_json(data).national_seal is None
    text = plain.to_ec1()
    # byte for byte the EC1 of before the co-seal: keys 1, 2, 3, 10, 4, 5, 6, 7 in that order
    old = {
        1: plain.chain_id,
        2: bytes.fromhex(plain.registry[2:]),
        3: [[leaf.salt, leaf.path, leaf.value] for leaf in plain.leaves],
        10: plain.digest,
        4: plain.seal,
        5: plain.batch_root,
        6: plain.batch_index,
        7: list(plain.batch_proof),
    }
    assert text == _ec1(old)
    assert Presentation.from_ec1(text) == plain and Presentation.from_ec1(text).to_ec1() == text
    # the sealed code is the old one plus key 11
    assert _compact(sealed[0].to_ec1()) == {**old, 11: sealed[0].national_seal.to_cbor()}  # type: ignore[union-attr]


def test_batch_presentations_attach_one_seal_per_record() -> None:
    batch = _batch(3)
    digests = [p.digest for p in batch.presentations]
    seals = seal_group(PRIVATE, CHAIN_ID, REGISTRY, digests)
    first = batch.presentations[0]
    tree_args: dict[str, Any] = {
        "chain_id": CHAIN_ID,
        "registry": REGISTRY,
        "leaves": [list(p.leaves) for p in batch.presentations],
        "digests": digests,
        "seals": [p.seal for p in batch.presentations],
    }
    from registry.certificate.merkle import batch_tree

    tree = batch_tree(digests)
    with_seals = batch_presentations(**tree_args, tree=tree, national_seals=seals)
    without = batch_presentations(**tree_args, tree=tree)
    assert [p.national_seal for p in with_seals] == seals
    assert [p.national_seal for p in without] == [None] * 3
    assert without[0] == dataclasses.replace(first, anchor_tx=None)
    with pytest.raises(ValueError):
        batch_presentations(**tree_args, tree=tree, national_seals=seals[:2])


def test_receipt_request_digest_covers_the_seal_and_agrees_between_json_and_ec1(
    sealed: list[Presentation],
) -> None:
    for presentation in (sealed[5], sealed[5].disclose(["holder.name"])):
        from_json = Presentation.from_json(json.loads(json.dumps(presentation.to_json())))
        from_ec1 = Presentation.from_ec1(presentation.to_ec1())
        assert digest_request(from_json) == digest_request(from_ec1) == digest_request(presentation)
        other = dataclasses.replace(presentation, national_seal=sealed[6].national_seal)
        assert digest_request(other) != digest_request(presentation)
        assert digest_request(dataclasses.replace(presentation, national_seal=None)) != digest_request(
            presentation
        )


def _hostile_key_11(seal: NationalSeal) -> list[object]:
    sig, proof = seal.signature, list(seal.proof)
    return [
        None,
        5,
        sig,
        [],
        [sig],
        [sig, proof, b""],
        [sig[:63], proof],
        [sig + b"\x00", proof],
        [sig.hex(), proof],
        [cbor2.CBORTag(24, sig), proof],
        [sig, b"".join(proof)],
        [sig, "proof"],
        [sig, [p.hex() for p in proof]],
        [sig, [*proof[:-1], proof[-1][:31]]],
        [sig, [*proof[:-1], proof[-1] + b"\x00"]],
        [sig, [proof[0]] * (MAX_PROOF_ITEMS + 1)],
        [sig, [5]],
        [sig, [None]],
        {0: sig, 1: proof},
    ]


def test_hostile_ec1_key_11_is_refused(sealed: list[Presentation]) -> None:
    seal = sealed[0].national_seal
    assert seal is not None
    compact = _compact(sealed[0].to_ec1())
    for value in _hostile_key_11(seal):
        with pytest.raises(CertificateError) as raised:
            Presentation.from_ec1(_ec1({**compact, 11: value}))
        assert raised.value.code == "CERT_MALFORMED", value
    for key in (0, 12, 13):  # still no other key
        with pytest.raises(CertificateError) as raised:
            Presentation.from_ec1(_ec1({**compact, key: 1}))
        assert raised.value.code == "CERT_MALFORMED"
    assert Presentation.from_ec1(_ec1({**compact, 11: [seal.signature, []]})).national_seal == NationalSeal(
        seal.signature, ()
    )


def test_hostile_json_national_seal_is_refused(sealed: list[Presentation]) -> None:
    data = sealed[0].to_json()
    good = data["nationalSeal"]
    hostile: list[object] = [
        None,
        "0x00",
        [],
        {},
        {**good, "keyId": "0x" + "00" * 32},
        {"signature": good["signature"][:-2], "proof": good["proof"]},
        {"signature": good["signature"], "proof": [*good["proof"], "0x1234"]},
        {"signature": good["signature"], "proof": [good["proof"][0]] * (MAX_PROOF_ITEMS + 1)},
    ]
    for value in hostile:
        with pytest.raises(CertificateError) as raised:
            Presentation.from_json({**data, "nationalSeal": value})
        assert raised.value.code == "CERT_MALFORMED", value


def test_typical_ec1_size_with_a_64_group_seal(sealed: list[Presentation]) -> None:
    """What the co-seal adds to a QR code: a 64-byte signature and 6 siblings (a group of 64), 273
    bytes of CBOR that zlib cannot shrink, so ~410–430 Base45 characters (2 bytes -> 3 characters).
    Measured on this fixture: holder package 1,581 -> 2,010, disclosure 1,134 -> 1,563."""
    for presentation in (sealed[10], sealed[10].disclose(["holder.name"])):
        assert presentation.national_seal is not None and len(presentation.national_seal.proof) == 6
        added = len(presentation.to_ec1()) - len(
            dataclasses.replace(presentation, national_seal=None).to_ec1()
        )
        assert 273 * 3 // 2 <= added <= 300 * 3 // 2
