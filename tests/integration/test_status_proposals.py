"""Maker-checker status changes (issue 12, point 5; issuer/proposals.py) on a real database: who
may propose, approve and reject; a clerk cannot approve their own proposal; 50 parallel
approvals approve once; per-row errors of a CSV; 100,000 identifiers in one proposal. Runs on
SQLite and, with ECERT_TEST_POSTGRES_URL, on PostgreSQL. (The chain side: test_status_outbox.py.)"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from databases import postgres_database
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from issuer.audit import AuditLog
from issuer.db import make_engine, migrate, sessions
from issuer.models import Agency, Batch, Certificate, Job, StaffMember, StatusProposal, StatusProposalItem
from issuer.proposals import MAX_ITEMS, RowError, StatusProposals, errors_csv, parse_identifiers
from issuer.staff import IssuerStaff, StaffView
from registry.error_codes import ErrorCode
from registry.errors import EcertError

POSTGRES_URL = os.environ.get("ECERT_TEST_POSTGRES_URL")
ZJ = "11330100002493028E"
GD = "114401000075021133"
TYPE = "11100000000013338W001"
PASSWORD = "four-eyes-pass-1"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not POSTGRES_URL, reason="set ECERT_TEST_POSTGRES_URL to run on PostgreSQL"))])  # fmt: skip
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        made = make_engine(f"sqlite:///{tmp_path / 'issuer.sqlite'}")
        migrate(made)
        yield made
        made.dispose()
        return
    assert POSTGRES_URL is not None
    with postgres_database(POSTGRES_URL) as url:
        made = make_engine(url)
        migrate(made)
        yield made
        made.dispose()


@dataclass
class Agency12:
    sessions: sessionmaker[Session]
    proposals: StatusProposals
    audit: AuditLog
    staff: dict[str, StaffView]
    identifiers: list[str]  # anchored, active, of ZJ


def add_certificates(made: sessionmaker[Session], agency: str, count: int, *, state: str = "confirmed",
                     prefix: str | None = None) -> list[str]:  # fmt: skip
    """`count` certificates of `agency` in one batch in `state` (no chain: rows as anchoring leaves them)."""
    prefix = prefix or f"{agency}-{secrets.token_hex(3)}"
    with made.begin() as session:
        job = Job(
            id=secrets.token_hex(8), agency_code=agency, type_code=TYPE, request_hash="0" * 64, total=count
        )
        batch = Batch(
            agency_code=agency, type_code=TYPE, root=secrets.token_bytes(32), count=count, state=state
        )
        session.add_all([job, batch])
        session.flush()
        identifiers = [f"{prefix}.{i:06d}" for i in range(count)]
        for start in range(0, count, 10_000):
            session.execute(insert(Certificate), [
                {"identifier": identifiers[i], "agency_code": agency, "type_code": TYPE, "job_id": job.id,
                 "position": i + 1, "state": "confirmed" if state == "confirmed" else "sealed",
                 "sealed_fields": b"", "digest": secrets.token_bytes(32), "batch_id": batch.id, "batch_index": i,
                 "status": "active"}
                for i in range(start, min(start + 10_000, count))
            ])  # fmt: skip
    return identifiers


@pytest.fixture
def agency(engine: Engine) -> Agency12:
    made = sessions(engine)
    with made.begin() as session:
        session.add_all([Agency(code=ZJ, name="杭州市市场监督管理局", region="330100"),
                         Agency(code=GD, name="广州市市场监督管理局", region="440100")])  # fmt: skip
    accounts = IssuerStaff(made, secrets.token_bytes(32), secrets.token_bytes(32))
    for username, role, code in (("clerk1", "clerk", ZJ), ("clerk2", "clerk", ZJ), ("approver1", "approver", ZJ),
                                 ("approver2", "approver", ZJ), ("auditor1", "auditor", ZJ), ("admin1", "admin", ZJ),
                                 ("gdapprover", "approver", GD)):  # fmt: skip
        accounts.add(code, role, username, username, PASSWORD)
    staff = {m.username: m for m in accounts.members()}
    audit = AuditLog(made)
    return Agency12(made, StatusProposals(made, audit), audit, staff, add_certificates(made, ZJ, 20))


def rows(identifiers: list[str]) -> list[tuple[int, str]]:
    return [(i + 1, identifier) for i, identifier in enumerate(identifiers)]


def state_of(agency: Agency12, proposal_id: int) -> str:
    with agency.sessions() as session:
        return session.get_one(StatusProposal, proposal_id).state


def test_a_clerk_proposes_and_a_different_approver_approves(agency: Agency12) -> None:
    clerk, approver = agency.staff["clerk1"], agency.staff["approver1"]
    done = agency.proposals.propose(clerk, "revoke", 7, rows(agency.identifiers[:5]), "吊销：以欺骗手段取得")
    assert done.proposal_id is not None and done.count == 5 and done.errors == []
    view = agency.proposals.get(ZJ, done.proposal_id)
    assert (view.state, view.action, view.reason, view.count, view.proposer_id) == (
        "proposed",
        "revoke",
        7,
        5,
        clerk.id,
    )
    approved = agency.proposals.approve(approver, done.proposal_id)
    assert approved.state == "approved" and approved.approver_id == approver.id and approved.decided_at
    with agency.sessions() as session:  # nothing changes before the chain confirms
        assert set(session.scalars(select(Certificate.status))) == {"active"}
    entries = [e for e in agency.audit.entries(ZJ) if e.action in ("propose", "approve")]
    assert [(e.action, e.actor, e.subject) for e in entries] == [
        ("propose", "clerk1", f"proposal:{done.proposal_id}"),
        ("approve", "approver1", f"proposal:{done.proposal_id}"),
    ]
    assert entries[0].details["count"] == 5 and entries[0].details["reason"] == "07"
    assert agency.audit.verify(ZJ).ok


def test_only_a_clerk_proposes_and_only_an_approver_decides(agency: Agency12) -> None:
    ids = rows(agency.identifiers[:2])
    for username in ("approver1", "auditor1", "admin1"):
        with pytest.raises(EcertError) as refused:
            agency.proposals.propose(agency.staff[username], "suspend", 2, ids)
        assert refused.value.code is ErrorCode.STAFF_ROLE_FORBIDDEN, username
    done = agency.proposals.propose(agency.staff["clerk1"], "suspend", 2, ids)
    assert done.proposal_id is not None
    for username in ("clerk1", "clerk2", "auditor1", "admin1"):  # the proposer, another clerk, reading roles
        for decide in (lambda s: agency.proposals.approve(s, done.proposal_id),
                       lambda s: agency.proposals.reject(s, done.proposal_id, "no")):  # fmt: skip
            with pytest.raises(EcertError) as refused:
                decide(agency.staff[username])
            assert refused.value.code is ErrorCode.STAFF_ROLE_FORBIDDEN, username
    with pytest.raises(EcertError) as other_agency:  # an approver of another agency does not see it
        agency.proposals.approve(agency.staff["gdapprover"], done.proposal_id)
    assert other_agency.value.code is ErrorCode.PROPOSAL_NOT_FOUND
    assert state_of(agency, done.proposal_id) == "proposed"
    assert not [e for e in agency.audit.entries(ZJ) if e.action in ("approve", "reject")]


def test_a_clerk_made_approver_still_cannot_approve_their_own_proposal(agency: Agency12) -> None:
    clerk = agency.staff["clerk1"]
    done = agency.proposals.propose(clerk, "revoke", 3, rows(agency.identifiers[:1]))
    assert done.proposal_id is not None
    with agency.sessions.begin() as session:  # the same person, given the approver role later
        session.execute(update(StaffMember).where(StaffMember.id == clerk.id).values(role="approver"))
    promoted = next(
        m for m in IssuerStaff(agency.sessions, b"k" * 32, b"h" * 32).members() if m.id == clerk.id
    )
    with pytest.raises(EcertError) as own:
        agency.proposals.approve(promoted, done.proposal_id)
    assert own.value.code is ErrorCode.PROPOSAL_OWN
    with pytest.raises(EcertError) as own_reject:
        agency.proposals.reject(promoted, done.proposal_id, "changed my mind")
    assert own_reject.value.code is ErrorCode.PROPOSAL_OWN
    assert state_of(agency, done.proposal_id) == "proposed"


def test_fifty_parallel_approvals_approve_once(agency: Agency12) -> None:
    done = agency.proposals.propose(agency.staff["clerk1"], "revoke", 4, rows(agency.identifiers))
    assert done.proposal_id is not None
    approvers = [agency.staff["approver1"], agency.staff["approver2"]]
    start = threading.Barrier(50)

    def approve(n: int) -> str:
        start.wait()
        try:
            agency.proposals.approve(approvers[n % 2], done.proposal_id)  # type: ignore[arg-type]
            return "approved"
        except EcertError as exc:
            return exc.code.value

    with ThreadPoolExecutor(50) as pool:
        outcomes = list(pool.map(approve, range(50)))
    assert outcomes.count("approved") == 1, outcomes
    assert set(outcomes) == {"approved", "PROPOSAL_NOT_PENDING"}
    assert state_of(agency, done.proposal_id) == "approved"
    assert len([e for e in agency.audit.entries(ZJ) if e.action == "approve"]) == 1
    assert agency.audit.verify(ZJ).ok


def test_reject_needs_a_reason_and_ends_the_proposal(agency: Agency12) -> None:
    done = agency.proposals.propose(agency.staff["clerk1"], "suspend", 99, rows(agency.identifiers[:3]))
    assert done.proposal_id is not None
    with pytest.raises(EcertError) as empty:
        agency.proposals.reject(agency.staff["approver1"], done.proposal_id, "  ")
    assert empty.value.code is ErrorCode.FIELD_MISSING
    rejected = agency.proposals.reject(agency.staff["approver1"], done.proposal_id, "证据不足")
    assert (rejected.state, rejected.reject_reason) == ("rejected", "证据不足")
    with pytest.raises(EcertError) as again:
        agency.proposals.approve(agency.staff["approver2"], done.proposal_id)
    assert again.value.code is ErrorCode.PROPOSAL_NOT_PENDING
    # rejected: its certificates may be proposed again
    assert agency.proposals.propose(
        agency.staff["clerk2"], "suspend", 2, rows(agency.identifiers[:3])
    ).proposal_id


def test_rows_are_checked_one_by_one(agency: Agency12) -> None:
    clerk = agency.staff["clerk1"]
    other = add_certificates(agency.sessions, GD, 1)
    unanchored = add_certificates(agency.sessions, ZJ, 1, state="sealed")
    ids = agency.identifiers
    with agency.sessions.begin() as session:
        session.execute(update(Certificate).where(Certificate.identifier == ids[1]).values(status="revoked"))
        session.execute(
            update(Certificate).where(Certificate.identifier == ids[2]).values(status="suspended")
        )
    busy = agency.proposals.propose(clerk, "suspend", 2, [(1, ids[3])])
    assert busy.proposal_id
    text = "\n".join(["identifier", ids[0], "no-such-certificate", other[0], unanchored[0], "", ids[1], ids[2],
                      ids[3], ids[0], "two words"])  # fmt: skip
    parsed, parse_errors = parse_identifiers(text)
    assert [e.row for e in parse_errors] == [11] and parse_errors[0].code is ErrorCode.IDENTIFIER_INVALID
    refused = agency.proposals.propose(clerk, "suspend", 2, parsed)
    assert refused.proposal_id is None
    assert [(e.row, e.code) for e in refused.errors] == [
        (3, ErrorCode.CERT_NOT_FOUND), (4, ErrorCode.CERT_NOT_FOUND), (5, ErrorCode.CERT_NOT_ANCHORED),
        (7, ErrorCode.CERT_REVOKED), (8, ErrorCode.STATUS_TRANSITION_INVALID), (9, ErrorCode.CERT_CHANGE_PENDING),
    ]  # fmt: skip  # lines counted with the header; line 10 repeats line 2 and is proposed once
    report = errors_csv(refused.errors)
    assert report.splitlines()[0] == "row,identifier,code,message" and len(report.splitlines()) == 7
    token = agency.proposals.keep_report(clerk.id, refused.errors)
    assert agency.proposals.report(clerk.id, token) == report
    with pytest.raises(EcertError):
        agency.proposals.report(agency.staff["clerk2"].id, token)  # another clerk's report: not found
    partial = agency.proposals.propose(clerk, "suspend", 2, parsed, skip_invalid=True)
    assert partial.proposal_id is not None and partial.count == 1 and len(partial.errors) == 6
    reinstate = agency.proposals.propose(clerk, "reinstate", 1, [(1, ids[2])])  # a suspended one
    assert reinstate.proposal_id is not None
    for action, reason, code in (("delete", 3, ErrorCode.PROPOSAL_ACTION_INVALID), ("revoke", 2, ErrorCode.REASON_INVALID),
                                 ("reinstate", 3, ErrorCode.REASON_INVALID)):  # fmt: skip
        with pytest.raises(EcertError) as bad:
            agency.proposals.propose(clerk, action, reason, [(1, ids[5])])
        assert bad.value.code is code
    with pytest.raises(EcertError) as empty:
        agency.proposals.propose(clerk, "revoke", 3, [])
    assert empty.value.code is ErrorCode.PROPOSAL_EMPTY


def test_csv_with_an_identifier_column_and_plain_lists() -> None:
    parsed, errors = parse_identifiers("\ufeffno,identifier,name\r\n1,A.1,甲\r\n\r\n2,B.2,乙\r\n3,,丙\r\n")
    assert parsed == [(2, "A.1"), (4, "B.2")] and [(e.row, e.code) for e in errors] == [
        (5, ErrorCode.FIELD_MISSING)
    ]
    parsed, errors = parse_identifiers("A.1\nB.2\n\nC.3\n")
    assert parsed == [(1, "A.1"), (2, "B.2"), (4, "C.3")] and errors == []
    parsed, errors = parse_identifiers("A.1,B.2\n")
    assert parsed == [] and errors[0].code is ErrorCode.CSV_MALFORMED
    assert "'=HYPERLINK()" in errors_csv(
        [RowError(1, "=HYPERLINK()", ErrorCode.CERT_NOT_FOUND, "x")]
    )  # no formula


def test_one_hundred_thousand_identifiers_in_one_proposal(agency: Agency12) -> None:
    many = add_certificates(agency.sessions, ZJ, MAX_ITEMS)
    started = time.monotonic()
    done = agency.proposals.propose(agency.staff["clerk1"], "revoke", 3, rows(many))
    took = time.monotonic() - started
    assert done.proposal_id is not None and done.count == MAX_ITEMS and done.errors == []
    with agency.sessions() as session:
        assert session.scalar(select(func.count()).select_from(StatusProposalItem)) == MAX_ITEMS
    assert took < 60, f"proposing 100,000 took {took:.1f} s"
    with pytest.raises(EcertError) as too_many:
        agency.proposals.propose(agency.staff["clerk1"], "revoke", 3, rows([*many, "one-more"]))
    assert too_many.value.code is ErrorCode.PROPOSAL_TOO_LARGE


def test_two_clerks_proposing_the_same_certificates_at_once_make_one_proposal(agency: Agency12) -> None:
    clerks = [agency.staff["clerk1"], agency.staff["clerk2"]]
    start = threading.Barrier(20)

    def propose(n: int) -> int | None:
        start.wait()
        return agency.proposals.propose(clerks[n % 2], "revoke", 3, rows(agency.identifiers[:5])).proposal_id

    with ThreadPoolExecutor(20) as pool:
        made = [p for p in pool.map(propose, range(20)) if p is not None]
    assert len(made) == 1, made
    with agency.sessions() as session:
        assert session.scalar(select(func.count()).select_from(StatusProposal)) == 1
        assert session.scalar(select(func.count()).select_from(StatusProposalItem)) == 5
