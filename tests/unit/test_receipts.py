"""Receipts: Ed25519 over RFC 8785; any change, wrong key or malformed document verifies False."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import random
import stat

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from issuer.batch import build_batch, serial_numbers
from registry.certificate.canonical import FieldLeaf
from registry.certificate.model import Issuer
from registry.errors import KeystoreError
from verifier.checks.base import CheckResult, Outcome
from verifier.pipeline import Report
from verifier.receipts import (
    ReceiptSigner,
    canonical_bytes,
    covers_disclosed,
    digest_disclosed,
    digest_request,
    disclosed_values,
    key_id,
    make_receipt,
    receipt_id,
    verify_receipt,
)

CHECKED_AT = dt.datetime(2026, 11, 23, 8, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@pytest.fixture(scope="module")
def presentation():
    batch = build_batch(
        [{"holder": {"name": "张三", "code": "11010519491231002X"}, "validUntil": "2031-01-01", "ext": {"scope": ["餐饮"]}}],
        type_code="11100000000013338W001", type_name="营业执照",
        issuer=Issuer("杭州市市场监督管理局", "11330100002493028E", "330100"),
        signing_key=bytes(Account.create().key), chain_id=31337, registry="0x5FbDB2315678afecb367f032d93F642f64180aa3",
        serials=serial_numbers("R"), salt_source=random.Random(5).randbytes, today=dt.date(2026, 11, 23),
    )  # fmt: skip
    return batch.presentations[0]


@pytest.fixture(scope="module")
def signer() -> ReceiptSigner:
    return ReceiptSigner.generate()


def report(verdict: Outcome = Outcome.INVALID) -> Report:
    checks = [
        CheckResult("integrity", Outcome.VALID, "DIGEST_OK", "ok", {"digest": "0x00"}),
        CheckResult(
            "status", Outcome.INVALID if verdict is Outcome.INVALID else Outcome.VALID, "CERT_REVOKED", "撤销"
        ),
    ]
    return Report(verdict, checks, CHECKED_AT)


@pytest.fixture(scope="module")
def document(signer: ReceiptSigner, presentation) -> dict:
    body = make_receipt(
        report(),
        request_digest=digest_request(presentation),
        chain_id=31337,
        block=42,
        source="chain",
        region="330000",
    )
    return signer.sign(body)


def test_receipt_body_names_the_answer_and_the_node(
    document: dict, signer: ReceiptSigner, presentation
) -> None:
    receipt = document["receipt"]
    assert receipt == {
        "requestDigest": "0x" + digest_request(presentation).hex(),
        "verdict": "INVALID",
        "reason": "CERT_REVOKED",
        "checks": [
            {"kind": "integrity", "outcome": "VALID", "code": "DIGEST_OK"},
            {"kind": "status", "outcome": "INVALID", "code": "CERT_REVOKED"},
        ],
        "chainId": 31337,
        "block": 42,
        "source": "chain",
        "checkedAt": "2026-11-23T00:30:15.123Z",
        "node": {"region": "330000", "keyId": signer.key_id},
    }
    assert len(base64.b64decode(document["signature"])) == 64


def test_round_trip_with_every_public_key_form(document: dict, signer: ReceiptSigner) -> None:
    raw = base64.b64decode(signer.public_key_b64())
    assert len(raw) == 32 and signer.key_id == key_id(signer.public_key()) and len(signer.key_id) == 16
    for key in (
        signer.public_key(),
        signer.public_key_pem(),
        signer.public_key_pem().encode(),
        signer.public_key_b64(),
        raw,
    ):
        assert verify_receipt(document, key)
    # after a trip through JSON text, as a bank would store it
    assert verify_receipt(json.loads(json.dumps(document)), signer.public_key())


def test_signature_is_over_the_rfc8785_bytes_of_the_receipt(document: dict, signer: ReceiptSigner) -> None:
    signer.public_key().verify(base64.b64decode(document["signature"]), rfc8785.dumps(document["receipt"]))


def test_offline_receipt_has_no_chain(signer: ReceiptSigner, presentation) -> None:
    body = make_receipt(
        report(Outcome.ERROR),
        request_digest=digest_request(presentation),
        chain_id=None,
        block=None,
        source="offline",
        region="310000",
    )
    document = signer.sign(body)
    assert (document["receipt"]["chainId"], document["receipt"]["block"]) == (None, None)
    assert verify_receipt(document, signer.public_key())


def test_every_changed_byte_fails(document: dict, signer: ReceiptSigner) -> None:
    text = canonical_bytes(document).decode("utf-8")
    rng = random.Random(3)
    tried = 0
    for position in range(len(text)):
        for replacement in {
            rng.choice('0123456789abcdefABCXYZ"{}[],:+/= nul'),
            chr(ord(text[position]) ^ 1),
        } - {text[position]}:
            try:
                mutant = json.loads(text[:position] + replacement + text[position + 1 :])
            except ValueError:
                continue  # not JSON any more: nothing to present
            if mutant == document:
                continue
            tried += 1
            assert not verify_receipt(mutant, signer.public_key()), (position, replacement)
    assert tried > len(text) // 2


def test_every_changed_signature_bit_fails(document: dict, signer: ReceiptSigner) -> None:
    signature = base64.b64decode(document["signature"])
    for bit in range(0, 512, 7):
        flipped = bytearray(signature)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert not verify_receipt(
            {**document, "signature": base64.b64encode(bytes(flipped)).decode()}, signer.public_key()
        )


def test_wrong_key_fails(document: dict) -> None:
    other = ReceiptSigner.generate()
    assert not verify_receipt(document, other.public_key())
    # a receipt re-signed by another key but still naming the first key's id
    forged = {
        "receipt": document["receipt"],
        "signature": base64.b64encode(other._key.sign(canonical_bytes(document["receipt"]))).decode(),
    }
    assert not verify_receipt(forged, other.public_key())


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: None,
        lambda d: [],
        lambda d: "receipt",
        lambda d: {},
        lambda d: {"receipt": d["receipt"]},
        lambda d: {**d, "extra": 1},
        lambda d: {**d, "signature": None},
        lambda d: {**d, "signature": "not base64!"},
        lambda d: {**d, "signature": base64.b64encode(b"short").decode()},
        lambda d: {**d, "signature": d["signature"][:-4]},
        lambda d: {**d, "receipt": None},
        lambda d: {**d, "receipt": {**d["receipt"], "extra": 1}},
        lambda d: {**d, "receipt": {k: v for k, v in d["receipt"].items() if k != "block"}},
        lambda d: {**d, "receipt": {**d["receipt"], "node": "330000"}},
        lambda d: {**d, "receipt": {**d["receipt"], "node": {"region": "330000"}}},
        lambda d: {**d, "receipt": {**d["receipt"], "checks": {"kind": "x"}}},
        lambda d: {**d, "receipt": {**d["receipt"], "checks": [[[[[]]]]]}},
        lambda d: {**d, "receipt": {**d["receipt"], "block": 2**70}},
        lambda d: {**d, "receipt": {**d["receipt"], "block": 42.0}},
        lambda d: {**d, "receipt": {**d["receipt"], "block": True}},
    ],
)
def test_malformed_documents_are_false_never_an_exception(
    document: dict, signer: ReceiptSigner, mangle
) -> None:
    assert verify_receipt(mangle(document), signer.public_key()) is False


@pytest.mark.parametrize(
    "key",
    [None, b"", b"\x00" * 31, "not a key", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", 42],
)
def test_malformed_public_keys_are_false(document: dict, key) -> None:
    assert verify_receipt(document, key) is False


def test_a_p256_public_key_is_refused(document: dict) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert verify_receipt(document, pem) is False


def test_load_or_create_makes_a_private_file_once(tmp_path, caplog) -> None:
    path = tmp_path / "node" / "receipt-key.pem"
    with caplog.at_level(logging.DEBUG):
        first = ReceiptSigner.load_or_create(path)
        again = ReceiptSigner.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.key_id == again.key_id and first.public_key_pem() == again.public_key_pem()
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    secret = "".join(path.read_text().splitlines()[1:-1])
    assert secret not in caplog.text and secret not in repr(first) and first.key_id in repr(first)


def test_load_refuses_an_exposed_or_broken_key_file(tmp_path) -> None:
    path = tmp_path / "key.pem"
    ReceiptSigner.load_or_create(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeystoreError) as exposed:
        ReceiptSigner.load_or_create(path)
    assert exposed.value.code == "RECEIPT_KEY_EXPOSED"
    os.chmod(path, 0o600)
    path.write_text("garbage")
    with pytest.raises(KeystoreError) as broken:
        ReceiptSigner.load_or_create(path)
    assert broken.value.code == "RECEIPT_KEY_INVALID"


def test_request_digest_is_the_same_for_json_and_ec1_and_ignores_the_anchor_hint(presentation) -> None:
    from registry.certificate.presentation import Presentation

    digest = digest_request(presentation)
    assert digest == digest_request(Presentation.from_ec1(presentation.to_ec1()))
    assert digest == digest_request(dataclasses.replace(presentation, anchor_tx="0x" + "ab" * 32))
    leaf = presentation.leaves[0]
    changed = dataclasses.replace(
        presentation, leaves=(FieldLeaf(leaf.salt, leaf.path, '"x"'), *presentation.leaves[1:])
    )
    assert digest_request(changed) != digest
    assert digest_request(presentation.disclose(["holder.name"])) != digest


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_canonical_bytes_is_rfc8785(value) -> None:
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(rfc8785.CanonicalizationError):
            canonical_bytes(value)
        return
    assert canonical_bytes(value) == expected


# ─── the disclosed values: covered by a digest, answered beside the receipt (issue 11, point 11) ──


def test_a_receipt_covers_the_disclosed_values_through_their_salted_digest(
    signer: ReceiptSigner, presentation
) -> None:
    disclosed = disclosed_values(presentation)
    assert disclosed["values"] == presentation.values() and len(disclosed["salt"]) == 22
    assert disclosed_values(presentation)["salt"] != disclosed["salt"]  # fresh per answer
    document = signer.sign(
        make_receipt(
            report(), request_digest=digest_request(presentation), chain_id=31337, block=42, source="chain",
            region="330000", disclosed_digest=digest_disclosed(disclosed),
        )
    )  # fmt: skip
    assert verify_receipt(document, signer.public_key()) and covers_disclosed(document, disclosed)
    assert (
        document["receipt"]["disclosedDigest"] == "0x" + hashlib.sha256(rfc8785.dumps(disclosed)).hexdigest()
    )
    name = presentation.values()["holder.name"]
    assert name not in json.dumps(document, ensure_ascii=False)  # no value in the receipt itself
    for changed in (
        {**disclosed, "values": {**disclosed["values"], "holder.name": "李四"}},
        {**disclosed, "values": {k: v for k, v in disclosed["values"].items() if k != "validUntil"}},
        {**disclosed, "salt": "A" * 22},
        disclosed["values"],
        None,
        "x",
    ):
        assert not covers_disclosed(document, changed)
    tampered = {**document, "receipt": {**document["receipt"], "disclosedDigest": "0x" + "00" * 32}}
    assert not verify_receipt(tampered, signer.public_key())


def test_a_receipt_of_the_old_shape_still_verifies_and_covers_nothing(
    document: dict, signer: ReceiptSigner
) -> None:
    assert "disclosedDigest" not in document["receipt"]
    assert verify_receipt(document, signer.public_key())
    assert not covers_disclosed(document, {"salt": "", "values": {}})


def test_a_receipt_s_id_is_computable_from_it(document: dict) -> None:
    assert receipt_id(document) == hashlib.sha256(document["signature"].encode()).hexdigest()[:32]
