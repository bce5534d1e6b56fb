"""The console's status change pages (issue 12, point 5; issuer/api/console_status.py) over real
HTTP to the app (httpx → ASGI) on SQLite: a clerk uploads a CSV of 1,000 identifiers (the rows
in error come back on the page and as a CSV download, numbered as the file's lines), then a clean
one; an approver sees it pending with proposer, count, action and reason and approves it; a
clerk cannot approve, an auditor and an admin can change nothing; every role sees the state and
a certificate's changes linked to their proposal. (The rules on PostgreSQL too, and the chain:
tests/integration/test_status_proposals.py and test_status_outbox.py.)"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from console_harness import console_app, console_staff
from fastapi import FastAPI
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker
from test_issuer_staff import PASSWORD, Clock, browser, csrf_of, sign_in

from issuer.api import console_status
from issuer.db import make_engine, migrate, sessions
from issuer.models import Agency, Batch, Certificate, Job, StatusProposal, StatusProposalChunk
from issuer.staff import IssuerStaff, Role

AGENCY = "11330100002493028E"
TYPE = "11100000000013338W001"


@pytest.fixture
def made(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'issuer.sqlite'}")
    migrate(engine)
    factory = sessions(engine)
    with factory.begin() as session:
        session.add(Agency(code=AGENCY, name="杭州市市场监督管理局", region="330100"))
    return factory


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def staff(made: sessionmaker[Session], clock: Clock) -> IssuerStaff:
    return console_staff(made, clock)


@pytest.fixture
def app(made: sessionmaker[Session], staff: IssuerStaff) -> FastAPI:
    runtime = SimpleNamespace(sessions=made, settings=SimpleNamespace(public_url=None))
    return console_app(staff, runtime, console_status.install)


def certificates(made: sessionmaker[Session], count: int) -> list[str]:
    """`count` anchored, active certificates of the agency (rows as the anchoring worker leaves them)."""
    with made.begin() as session:
        job = Job(
            id=secrets.token_hex(8), agency_code=AGENCY, type_code=TYPE, request_hash="0" * 64, total=count
        )
        batch = Batch(
            agency_code=AGENCY, type_code=TYPE, root=secrets.token_bytes(32), count=count, state="confirmed"
        )
        session.add_all([job, batch])
        session.flush()
        ids = [f"1.2.156.3005.2.{TYPE}.{AGENCY}.{i:06d}" for i in range(count)]
        session.execute(insert(Certificate), [
            {"identifier": x, "agency_code": AGENCY, "type_code": TYPE, "job_id": job.id, "position": i + 1,
             "state": "confirmed", "sealed_fields": b"", "digest": secrets.token_bytes(32), "batch_id": batch.id,
             "batch_index": i, "status": "active"} for i, x in enumerate(ids)])  # fmt: skip
    return ids


def signed_in(app: FastAPI, staff: IssuerStaff, clock: Clock, role: Role, username: str) -> httpx.Client:
    made = staff.add(AGENCY, role, username, f"{username}名", PASSWORD)
    client = browser(app)
    assert sign_in(client, username, made.secret, clock).status_code == 303
    clock.next_step()
    return client


def post_csv(client: httpx.Client, body: str, lang: str = "zh", **fields: str) -> httpx.Response:
    form = client.get(f"/console/status/new?lang={lang}")
    assert form.status_code == 200
    data = {"csrf_token": csrf_of(form.text), "action": "revoke", "reason": "3", **fields}
    return client.post(f"/console/status/new?lang={lang}", data=data,
                       files={"file": ("ids.csv", body.encode("utf-8-sig"), "text/csv")})  # fmt: skip


def test_a_clerk_proposes_by_csv_and_an_approver_approves(
    app: FastAPI, staff: IssuerStaff, clock: Clock, made: sessionmaker[Session]
) -> None:
    ids = certificates(made, 1000)
    clerk = signed_in(app, staff, clock, Role.CLERK, "clerk1")
    home = clerk.get("/console/status")
    assert home.status_code == 200 and "data-propose-link" in home.text

    # a file with two bad rows: nothing proposed, the rows shown and downloadable
    bad = post_csv(
        clerk, "identifier\r\n" + "\r\n".join([*ids[:500], "no-such-one", *ids[500:], "x y"]) + "\r\n"
    )
    assert bad.status_code == 422 and 'data-problem="PROPOSAL_INVALID_ROWS"' in bad.text
    assert (
        'data-row-errors="2"' in bad.text
        and 'data-error-row="502"' in bad.text
        and 'data-error-row="1003"' in bad.text
    )
    assert "表头行和空行也计算在内" in bad.text  # the page says how rows are numbered
    link = re.search(r'href="(/console/status/errors/[^"]+\.csv)\?', bad.text)
    assert link
    report = clerk.get(link.group(1))
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    lines = report.text.lstrip("\ufeff").splitlines()
    assert lines[0] == "row,identifier,code,message" and lines[1].startswith("502,no-such-one,CERT_NOT_FOUND")
    assert lines[2].startswith("1003,x y,IDENTIFIER_INVALID")
    with made() as session:
        assert session.scalar(select(StatusProposal.id)) is None

    done = post_csv(clerk, "identifier\r\n" + "\r\n".join(ids) + "\r\n")
    assert done.status_code == 303
    proposal_id = int(done.headers["location"].split("/")[-1].split("?")[0])
    page = clerk.get(done.headers["location"])
    assert (
        'data-state="proposed"' in page.text and "1,000" in page.text and "data-approve-form" not in page.text
    )

    # the clerk may not approve (their own or any); nor may an auditor or an admin change anything
    csrf = csrf_of(page.text)
    assert clerk.post(f"/console/status/{proposal_id}/approve", data={"csrf_token": csrf}).status_code == 403
    for role, name in ((Role.AUDITOR, "auditor1"), (Role.ADMIN, "admin1")):
        other = signed_in(app, staff, clock, role, name)
        seen = other.get(f"/console/status/{proposal_id}")
        assert seen.status_code == 200 and "data-approve-form" not in seen.text
        token = csrf_of(seen.text)
        for path, data in ((f"/console/status/{proposal_id}/approve", {}),
                           (f"/console/status/{proposal_id}/reject", {"reason": "x"}),
                           ("/console/status/new", {"action": "revoke", "reason": "3", "identifier": ids[0]})):  # fmt: skip
            refused = other.post(path, data={"csrf_token": token, **data})
            assert refused.status_code == 403 and 'data-problem="STAFF_ROLE_FORBIDDEN"' in refused.text, (
                role,
                path,
            )
        assert other.get("/console/status/new").status_code == 403

    approver = signed_in(app, staff, clock, Role.APPROVER, "approver1")
    listing = approver.get("/console/status?lang=en")
    row = re.search(rf'<tr data-pending-row="{proposal_id}">(.*?)</tr>', listing.text, re.S)
    assert (
        row
        and "clerk1名 (clerk1)" in row.group(1)
        and "Revoke" in row.group(1)
        and "03 withdrawn" in row.group(1)
    )
    assert "1,000" in row.group(1)
    detail = approver.get(f"/console/status/{proposal_id}?lang=en")
    assert "data-approve-form" in detail.text and "data-reject-form" in detail.text
    approved = approver.post(
        f"/console/status/{proposal_id}/approve?lang=en", data={"csrf_token": csrf_of(detail.text)}
    )
    assert approved.status_code == 303
    again = approver.post(
        f"/console/status/{proposal_id}/approve?lang=en", data={"csrf_token": csrf_of(detail.text)}
    )
    assert again.status_code == 409 and 'data-problem="PROPOSAL_NOT_PENDING"' in again.text
    shown = clerk.get(f"/console/status/{proposal_id}")
    assert 'data-state="approved"' in shown.text and "approver1名 (approver1)" in shown.text

    # once sent, the transaction hashes show, and a certificate's page links its change to the proposal
    tx_hash = "0x" + "ab" * 32
    with made.begin() as session:
        batch_id = session.scalar(select(Batch.id))
        session.add(StatusProposalChunk(proposal_id=proposal_id, batch_id=batch_id, word=0, mask=(2**256 - 1).to_bytes(32, "big"),
                                        count=256, state="mined", tx_hash=tx_hash, block_number=42, attempts=1))  # fmt: skip
        session.execute(update(StatusProposal).where(StatusProposal.id == proposal_id).values(state="sent"))
    sent = clerk.get(f"/console/status/{proposal_id}")
    assert tx_hash in sent.text and 'data-state="sent"' in sent.text
    history = approver.get(f"/console/status/certificate?identifier={ids[7]}&lang=en")
    assert history.status_code == 200
    change = re.search(rf'<tr data-change="{proposal_id}">(.*?)</tr>', history.text, re.S)
    assert (
        change
        and f'href="/console/status/{proposal_id}?lang=en"' in change.group(1)
        and tx_hash in change.group(1)
    )
    assert "approver1名 (approver1)" in change.group(1)
    missing = approver.get("/console/status/certificate?identifier=nope")
    assert missing.status_code == 404 and 'data-problem="CERT_NOT_FOUND"' in missing.text


def test_one_identifier_or_a_pasted_list_and_a_rejection(
    app: FastAPI, staff: IssuerStaff, clock: Clock, made: sessionmaker[Session]
) -> None:
    ids = certificates(made, 5)
    clerk = signed_in(app, staff, clock, Role.CLERK, "clerk2")
    form = clerk.get("/console/status/new?lang=en")
    csrf = csrf_of(form.text)
    both = clerk.post("/console/status/new?lang=en", data={"csrf_token": csrf, "action": "suspend", "reason": "2",
                                                           "identifier": ids[0], "identifiers": ids[1]})  # fmt: skip
    assert both.status_code == 422 and 'data-problem="FIELD_INVALID"' in both.text
    wrong_reason = clerk.post("/console/status/new?lang=en", data={"csrf_token": csrf, "action": "suspend",
                                                                   "reason": "7", "identifier": ids[0]})  # fmt: skip
    assert wrong_reason.status_code == 422 and 'data-problem="REASON_INVALID"' in wrong_reason.text
    malformed = post_csv(clerk, f"{ids[0]}\r\nnot an identifier\r\n", lang="en", action="suspend", reason="2")
    assert (
        malformed.status_code == 422 and 'data-error-row="2"' in malformed.text
    )  # a parse error alone refuses
    only_bad = post_csv(clerk, "a b\r\n", lang="en", action="suspend", reason="2")
    assert only_bad.status_code == 422 and 'data-error-row="1"' in only_bad.text
    with made() as session:
        assert session.scalar(select(StatusProposal.id)) is None
    one = clerk.post("/console/status/new?lang=en", data={"csrf_token": csrf, "action": "suspend", "reason": "2",
                                                          "identifier": ids[0]})  # fmt: skip
    assert one.status_code == 303
    listed = clerk.post("/console/status/new?lang=en", data={
        "csrf_token": csrf, "action": "suspend", "reason": "99", "identifiers": f"{ids[1]}\n\n{ids[0]}\n{ids[2]}\n",
        "skip_invalid": "1"})  # fmt: skip
    assert (
        listed.status_code == 200 and 'data-error-row="3"' in listed.text and "data-proposed" in listed.text
    )
    proposal_id = int(re.search(r'data-proposed="(\d+)"', listed.text).group(1))  # type: ignore[union-attr]
    approver = signed_in(app, staff, clock, Role.APPROVER, "approver2")
    detail = approver.get(f"/console/status/{proposal_id}")
    no_reason = approver.post(
        f"/console/status/{proposal_id}/reject", data={"csrf_token": csrf_of(detail.text)}
    )
    assert no_reason.status_code == 422 and 'data-problem="FIELD_MISSING"' in no_reason.text
    rejected = approver.post(f"/console/status/{proposal_id}/reject",
                             data={"csrf_token": csrf_of(detail.text), "reason": "材料不全"})  # fmt: skip
    assert rejected.status_code == 303
    page = clerk.get(f"/console/status/{proposal_id}")
    assert 'data-state="rejected"' in page.text and "材料不全" in page.text
    with made() as session:
        assert {p.state for p in session.scalars(select(StatusProposal))} == {"proposed", "rejected"}
