"""The `national-seal` check (issue 13, point 4) on its own and in the verdict, with a stub
reader that answers the agency's SM2 keys as the chain, the index and the snapshot do: VALID
with a good key; NOT_APPLICABLE (SKIPPED) for an unsealed certificate, which stays VALID
overall; INVALID for a false seal, a seal by a key not good at anchor time, and a missing seal
where the node's policy requires one; ERROR when the keys cannot be read."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from test_core_checks import AGENCY, LICENCE, StubReader, check, inspection, issue

from registry.certificate.national_seal import NationalSeal, seal_group
from registry.certificate.presentation import Presentation
from registry.contracts.trust_registry import NationalKeyInfo
from registry.national import generate_private_key, key_id, public_key
from verifier.checks.base import Outcome
from verifier.checks.national_seal import NationalSealCheck
from verifier.pipeline import DEFAULT_CHECKS, verify_presentation
from verifier.policy import POLICY_DIR, Policy

ANCHORED_AT = 1_790_000_000  # 2026-09-21 in Beijing (the stub inspection's anchor time)
PRIVATE = generate_private_key()
OTHER = generate_private_key()


@pytest.fixture(scope="module")
def unsealed() -> Presentation:
    return issue([{"holder": {"name": "张三", "code": "11010519491231002X"}, "validUntil": "2031-01-01"}])[0]


def key_info(private: bytes, **record: int) -> NationalKeyInfo:
    public = public_key(private)
    history = {"valid_from": 1_700_000_000, "retired_at": 0, "compromised_since": 0} | record
    return NationalKeyInfo(key_id(public), public, AGENCY, **history)


@dataclasses.dataclass
class SM2Reader(StubReader):
    keys: tuple[NationalKeyInfo, ...] = ()

    def national_keys(self, agency_code: str) -> list[NationalKeyInfo]:
        assert agency_code == AGENCY
        return list(self.keys)


def sealed(p: Presentation, private: bytes = PRIVATE) -> Presentation:
    seal = seal_group(private, p.chain_id, p.registry, [b"\x01" * 32, p.digest, b"\x02" * 32])[1]
    return dataclasses.replace(p, national_seal=seal)


def run(p: Presentation, *keys: NationalKeyInfo, policy: Policy | None = None) -> tuple[Outcome, str]:
    result = check(NationalSealCheck(policy), p, SM2Reader(inspection(), keys=keys))
    return result.outcome, result.code


def requiring(day: str) -> Policy:
    return Policy.from_json({"region": "330000", "recognise": [
        {"types": ["*"], "regions": ["330000"], "requireNationalSealFrom": day}, {"types": ["*"], "regions": ["*"]}]})  # fmt: skip


def test_a_seal_by_the_agency_s_good_key_is_valid(unsealed: Presentation) -> None:
    assert run(sealed(unsealed), key_info(OTHER), key_info(PRIVATE)) == (Outcome.VALID, "NATIONAL_SEAL_OK")


def test_an_unsealed_unsealed_is_not_applicable_and_stays_valid(unsealed: Presentation) -> None:
    assert run(unsealed, key_info(PRIVATE)) == (Outcome.SKIPPED, "NATIONAL_SEAL_ABSENT")
    report = verify_presentation(
        unsealed, SM2Reader(inspection()), clock=lambda: dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    )
    assert report.verdict is Outcome.VALID, report.to_json()
    assert [c.outcome for c in report.checks if c.kind == "national-seal"] == [Outcome.SKIPPED]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("other key", "NATIONAL_SEAL_INVALID"),
        ("other digest", "NATIONAL_SEAL_INVALID"),
        ("broken proof", "NATIONAL_SEAL_INVALID"),
        ("other chain", "NATIONAL_SEAL_INVALID"),
        ("retired before", "NATIONAL_KEY_NOT_VALID"),
        ("compromised before", "NATIONAL_KEY_NOT_VALID"),
        ("valid only later", "NATIONAL_KEY_NOT_VALID"),
    ],
)
def test_a_false_seal_or_a_key_not_good_at_anchor_time_is_invalid(
    unsealed: Presentation,
    change: str,
    code: str,
) -> None:
    good = sealed(unsealed)
    keys = [key_info(PRIVATE)]
    presentation = good
    if change == "other key":
        presentation = sealed(unsealed, OTHER)
    elif change == "other digest":
        presentation = dataclasses.replace(good, digest=b"\x03" * 32)
    elif change == "broken proof":
        assert good.national_seal is not None
        proof = (bytes(32), *good.national_seal.proof[1:])
        presentation = dataclasses.replace(
            good, national_seal=NationalSeal(good.national_seal.signature, proof)
        )
    elif change == "other chain":
        presentation = dataclasses.replace(good, chain_id=1)
    elif change == "retired before":
        keys = [key_info(PRIVATE, retired_at=ANCHORED_AT - 1)]
    elif change == "compromised before":
        keys = [key_info(PRIVATE, compromised_since=ANCHORED_AT)]
    else:
        keys = [key_info(PRIVATE, valid_from=ANCHORED_AT + 1)]
    assert run(presentation, *keys) == (Outcome.INVALID, code)
    if change != "other chain":  # the whole verdict too (another chain fails `format` first)
        report = verify_presentation(presentation, SM2Reader(inspection(), keys=tuple(keys)),
                                     clock=lambda: dt.datetime(2026, 11, 23, tzinfo=dt.UTC))  # fmt: skip
        assert report.verdict is Outcome.INVALID


def test_the_node_s_policy_requires_a_seal_on_what_is_anchored_from_its_day(
    unsealed: Presentation,
) -> None:
    assert run(unsealed, policy=requiring("2026-09-21")) == (Outcome.INVALID, "NATIONAL_SEAL_REQUIRED")
    assert run(unsealed, policy=requiring("2026-09-22")) == (
        Outcome.SKIPPED,
        "NATIONAL_SEAL_ABSENT",
    )  # anchored before
    assert run(sealed(unsealed), key_info(PRIVATE), policy=requiring("2026-09-21"))[0] is Outcome.VALID
    other_region = Policy.from_json({"region": "330000", "recognise": [
        {"types": ["*"], "regions": ["440000"], "requireNationalSealFrom": "2020-01-01"}, {"types": ["*"], "regions": ["*"]}]})  # fmt: skip
    assert run(unsealed, policy=other_region)[0] is Outcome.SKIPPED


@pytest.mark.parametrize("day", ["2027-1-1", "tomorrow", 20270101, "2027-02-30"])
def test_a_policy_with_a_bad_day_is_refused(day: object) -> None:
    with pytest.raises(Exception, match="requireNationalSealFrom"):
        Policy.from_json(
            {
                "region": "330000",
                "recognise": [{"types": ["*"], "regions": ["*"], "requireNationalSealFrom": day}],
            }
        )


def test_keys_that_cannot_be_read_are_an_error_never_a_verdict(unsealed: Presentation) -> None:
    down = check(
        NationalSealCheck(),
        sealed(unsealed),
        SM2Reader(inspection(), down=True, keys=(key_info(PRIVATE),)),
    )
    assert down.outcome is Outcome.ERROR
    without_keys = check(NationalSealCheck(), sealed(unsealed), StubReader(inspection()))  # an old reader
    assert without_keys.outcome is Outcome.ERROR
    assert "national-seal" in {c.kind for c in DEFAULT_CHECKS}


def test_the_zhejiang_node_requires_the_seal_on_what_is_anchored_from_2027() -> None:
    node = Policy.load(POLICY_DIR / "330000.json")
    cst = dt.timezone(dt.timedelta(hours=8))
    for region in (330100, 440100, 650102):
        assert node.national_seal_rule(LICENCE, region, dt.datetime(2027, 1, 1, 0, 0, tzinfo=cst)) is not None
        assert node.national_seal_rule(LICENCE, region, dt.datetime(2026, 12, 31, 23, 59, tzinfo=cst)) is None


def test_a_group_s_signature_is_verified_once_for_all_its_certificates() -> None:
    from registry.certificate import national_seal

    digests = [bytes([n]) * 32 for n in range(1, 9)]
    seals = seal_group(PRIVATE, 31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3", digests)
    before = national_seal._verified.cache_info()
    for digest, seal in zip(digests, seals, strict=True):
        key = national_seal.check_seal(
            [public_key(PRIVATE)], 31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3", digest, seal
        )
        assert key == public_key(PRIVATE)
    after = national_seal._verified.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 7)
