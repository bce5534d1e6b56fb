""" "Valid at T" uses everything known now (issue 10, point 15), and the index carries the reason of
a status change to the verifier (point 16): the index's `History` over records made by hand, read
by the node's `IndexReader` and judged by the pipeline, with no database and no chain."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from eth_account import Account

from issuer.batch import build_batch, serial_numbers
from registry.certificate.model import Issuer
from registry.contracts.certificate_registry import Status
from registry.indexer import History
from registry.indexer.records import AgencyHistory, KeyHistory, TrustView, batch_record
from verifier.checks.base import Outcome
from verifier.pipeline import verify_presentation
from verifier.readers import IndexReader

LICENCE = "11100000000013338W001"
AGENCY = "11330100002493028E"
REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
KEY = Account.create()
ANCHORED_AT = 1_790_000_000
COMPROMISED_SINCE = ANCHORED_AT - 3600  # before the anchor...
DECLARED_AT = ANCHORED_AT + 86_400  # ...but declared a day after it
REVOKED_AT = ANCHORED_AT + 2 * 86_400


def iso(unix: int) -> str:
    return dt.datetime.fromtimestamp(unix, dt.UTC).isoformat()


class View:
    """What `History` reads: the batches, the trust records and the block they rest on."""

    def __init__(self, batches, trust: TrustView) -> None:
        self.batches, self.trust = batches, trust
        self.block_number, self.indexed_at = 100, None

    def batch(self, root: bytes):
        return self.batches.get(root)


class HandMadeHistory(History):
    def __init__(self, view: View) -> None:  # no engine: nothing to follow
        self.snapshot = view  # type: ignore[assignment]

    def _view(self):  # type: ignore[no-untyped-def, override]
        return self.snapshot


class Head:
    block = 100


def world(certificate, key_changes=(), status_events=()) -> IndexReader:
    batch = batch_record(
        {"root": certificate.batch_root, "agency_code": AGENCY, "agency_index": 1, "key": KEY.address, "type_code": LICENCE,
         "count": 1, "anchored_at": ANCHORED_AT, "block_number": 10, "log_index": 0, "tx_hash": b"\x02" * 32},
        [(11 + i, 0, event) for i, event in enumerate(status_events)],
    )  # fmt: skip
    key = KeyHistory(KEY.address, AGENCY, 1, ANCHORED_AT - 86_400, ANCHORED_AT - 86_400, tuple(key_changes))
    agency = AgencyHistory(
        AGENCY, 1, 330100, "杭州市市场监督管理局", 0, (), ((0, LICENCE, True),), (KEY.address,)
    )
    trust = TrustView({AGENCY: agency}, {1: agency}, {KEY.address.lower(): key}, {})
    history = HandMadeHistory(View({certificate.batch_root: batch}, trust))

    class Chain:  # never asked: the index knows the batch
        chain_id, registry = 31337, REGISTRY

    return IndexReader(history, Chain(), Head(), max_lag=2)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def certificate():
    batch = build_batch(
        [{"holder": {"name": "张三", "code": "11010519491231002X"}, "validUntil": "2036-01-01"}],
        type_code=LICENCE, type_name="营业执照", issuer=Issuer("杭州市市场监督管理局", AGENCY, "330100"),
        signing_key=bytes(KEY.key), chain_id=31337, registry=REGISTRY,
        serials=serial_numbers("C"), salt_source=random.Random(15).randbytes, today=dt.date(2026, 1, 1),
    )  # fmt: skip
    return batch.presentations[0]


def verify_at(certificate, reader: IndexReader, at: int | None):
    moment = None if at is None else dt.datetime.fromtimestamp(at, dt.UTC)
    return verify_presentation(
        certificate, reader, clock=lambda: dt.datetime(2027, 1, 1, tzinfo=dt.UTC), at=moment
    )


def test_the_control_is_valid_at_every_time(certificate) -> None:
    reader = world(certificate)
    for at in (None, ANCHORED_AT, DECLARED_AT - 1, DECLARED_AT + 1):
        assert verify_at(certificate, reader, at).verdict is Outcome.VALID


@pytest.mark.parametrize(
    "at", [None, ANCHORED_AT, ANCHORED_AT + 60, DECLARED_AT - 1, DECLARED_AT, DECLARED_AT + 86_400]
)
def test_a_key_compromised_before_the_anchor_makes_it_invalid_at_every_time(
    certificate, at: int | None
) -> None:
    reader = world(certificate, key_changes=[(DECLARED_AT, "compromised", COMPROMISED_SINCE)])
    report = verify_at(certificate, reader, at)
    assert (report.verdict, report.reason) == (Outcome.INVALID, "ANCHOR_KEY_COMPROMISED"), report.to_json()
    authority = next(c for c in report.checks if c.kind == "authority")
    assert (authority.evidence["compromisedSince"], authority.evidence["knownSince"]) == (
        iso(COMPROMISED_SINCE),
        iso(DECLARED_AT),
    )
    assert f"known since {iso(DECLARED_AT)}" in authority.message


def test_a_compromise_from_after_the_anchor_leaves_it_valid(certificate) -> None:
    reader = world(certificate, key_changes=[(DECLARED_AT, "compromised", ANCHORED_AT + 1)])
    assert verify_at(certificate, reader, ANCHORED_AT).verdict is Outcome.VALID
    assert verify_at(certificate, reader, None).verdict is Outcome.VALID


def test_known_since_is_the_first_declaration_that_reached_back_before_the_anchor(certificate) -> None:
    """Declared first from after the anchor (harmless), then moved back before it: known from the second."""
    later = DECLARED_AT + 3600
    changes = [(DECLARED_AT, "compromised", ANCHORED_AT + 10), (later, "compromised", COMPROMISED_SINCE)]
    report = verify_at(certificate, world(certificate, key_changes=changes), ANCHORED_AT)
    authority = next(c for c in report.checks if c.kind == "authority")
    assert (authority.code, authority.evidence["knownSince"]) == ("ANCHOR_KEY_COMPROMISED", iso(later))


def test_the_index_brings_the_revocation_reason_to_the_report(certificate) -> None:
    """Point 16: revoked 07 吊销 on the index; the report's status check says so, at and after that time."""
    reader = world(certificate, status_events=[(REVOKED_AT, 0, 0b1, Status.REVOKED, 7)])
    assert verify_at(certificate, reader, REVOKED_AT - 1).verdict is Outcome.VALID  # not revoked yet then
    for at in (REVOKED_AT, None):
        report = verify_at(certificate, reader, at)
        status = next(c for c in report.checks if c.kind == "status")
        assert (report.verdict, status.code) == (Outcome.INVALID, "CERT_REVOKED")
        assert (status.evidence["reason"], status.evidence["reasonZh"], status.evidence["since"]) == (
            "07",
            "吊销",
            iso(REVOKED_AT),
        )
        assert "07 吊销" in status.message and "revoked as a penalty" in status.message
