"""Presentations: holder package JSON, disclosures with multiproofs, the EC1 offline form."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random

import pytest
from eth_account import Account

from issuer.batch import build_batch, serial_numbers
from registry.certificate.model import Issuer, mask_code
from registry.certificate.presentation import Presentation
from registry.errors import CertificateError

ISSUER = Issuer("杭州市市场监督管理局", "11330100002493028E", "330100")
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


@pytest.fixture(scope="module")
def batch():
    rng = random.Random(1)
    records = [
        {
            "holder": {"name": f"持证人{i}", "code": "11010519491231002X"},
            "validUntil": "2031-01-01",
            "ext": {"scope": ["餐饮", "零售"], "n": i},
        }
        for i in range(5)
    ]
    return build_batch(
        records, type_code="11100000000013338W001", type_name="营业执照", issuer=ISSUER,
        signing_key=bytes(Account.create().key), chain_id=31337, registry=REGISTRY,
        serials=serial_numbers("T"), salt_source=rng.randbytes, today=dt.date(2026, 11, 23),
    )  # fmt: skip


def test_fields_hold_the_standard_metadata_and_masked_twin(batch) -> None:
    fields = batch.presentations[2].fields()
    assert fields["identifier"].startswith(
        "1.2.156.3005.2.11100000000013338W001.11330100002493028E.T0000003.001."
    )
    assert fields["issuer"] == {"name": ISSUER.name, "code": ISSUER.code, "region": "330100"}
    assert fields["holder"]["codeMasked"] == "1101**********002X" == mask_code("11010519491231002X")
    assert fields["ext"]["scope"] == ["餐饮", "零售"]
    assert (fields["issuedDate"], fields["validFrom"], fields["validUntil"]) == (
        "2026-11-23",
        "2026-11-23",
        "2031-01-01",
    )


def test_json_round_trip(batch) -> None:
    for presentation in batch.presentations:
        again = Presentation.from_json(json.loads(json.dumps(presentation.to_json())))
        assert again == presentation
        assert again.computed_digest() == again.digest


def test_ec1_round_trip_full_and_disclosed(batch) -> None:
    full = batch.presentations[0]
    disclosed = full.disclose(["holder.name", "holder.codeMasked", "validFrom", "validUntil"])
    for presentation in (full, disclosed):
        text = presentation.to_ec1()
        assert text.startswith("EC1:") and set(text[4:]) <= set(
            "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
        )
        again = Presentation.from_ec1(text)
        assert again == presentation
        assert again.computed_digest() == full.digest


def test_disclosure_shows_only_chosen_fields_and_still_proves_the_digest(batch) -> None:
    full = batch.presentations[1]
    disclosed = full.disclose(["holder.name", "validFrom"])
    bound = {
        "identifier": full.values()["identifier"],
        "typeCode": full.values()["typeCode"],
        "issuer": {"code": full.values()["issuer.code"]},
    }
    assert disclosed.fields() == {
        "holder": {"name": "持证人1"},
        "validFrom": "2026-11-23",
        **bound,
    }  # the type and agency always come along
    assert disclosed.is_partial and disclosed.computed_digest() == disclosed.digest
    hidden = dataclasses.replace(disclosed, leaves=disclosed.leaves[:1])
    with pytest.raises(CertificateError):
        assert hidden.computed_digest() != disclosed.digest


def test_disclosing_an_unknown_field_names_it(batch) -> None:
    with pytest.raises(CertificateError) as raised:
        batch.presentations[0].disclose(["holder.name", "holder.phone"])
    assert raised.value.code == "FIELD_UNKNOWN" and "holder.phone" in raised.value.message


@pytest.mark.parametrize(
    "text",
    [
        "",
        "EC1:",
        "EC1:%%%%",
        "EC2:ABC",
        "EC1:" + "A" * 20000,
        "EC1:0123456789",
        "{",
        "[]",
        '{"format": "ecert/1"}',
    ],
)
def test_malformed_inputs_raise_a_certificate_error(text: str) -> None:
    from verifier.inputs import presentation_from_text

    with pytest.raises(CertificateError) as raised:
        presentation_from_text(text)
    assert raised.value.code in {"CERT_MALFORMED", "CERT_FORMAT"}


def test_truncated_and_bit_flipped_ec1_never_parse_into_the_same_certificate(batch) -> None:
    original = batch.presentations[0]
    text = original.to_ec1()
    rng = random.Random(3)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
    for _ in range(200):
        cut = rng.randrange(5, len(text))
        mutated = [text[:cut], text[:cut] + rng.choice(alphabet) + text[cut + 1 :]]
        for candidate in mutated:
            if candidate == text:
                continue
            try:
                parsed = Presentation.from_ec1(candidate)
            except CertificateError:
                continue
            assert parsed != original or parsed.computed_digest() != original.digest
