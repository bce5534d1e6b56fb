"""The console's jobs, search, certificate pages and issue form (issue 12, points 2, 3 and 4),
over real HTTP to the app (httpx → ASGI), on SQLite and, where the database matters (the blind
index, paging, the audit trail), on PostgreSQL too (`ECERT_TEST_POSTGRES_URL`).

The blind index matches exact values only (normalised: full-width, case, spaces), per agency;
personal data is masked by default; unmasking needs a reason and is audited without the values;
the auditor may neither unmask nor issue; the issue form puts the GB check's error beside its
field. Certificates are stored by the real intake (`IssuerService.submit`) with no chain: a
batch is written by hand where a page needs one."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from console_harness import console_app, console_staff
from databases import postgres_database
from eth_account import Account
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from test_issuer_staff import PASSWORD, Clock, browser, csrf_of, sign_in

from issuer.api import console_certificates
from issuer.blind_index import HOLDER_CODE, HOLDER_NAME, NUMBER, BlindIndex, normalise, reindex
from issuer.certificate_search import CertificatePages, SearchQuery
from issuer.db import make_engine, migrate, sessions
from issuer.models import Agency, AuditLogEntry, Batch, BatchEvent, Certificate
from issuer.service import IssuerService
from issuer.staff import IssuerStaff, Role
from registry.certificate.identifiers import id_number_check_char
from registry.certificate.merkle import batch_tree

AGENCY, OTHER = "11330100002493028E", "114401000075021133"
DRIVING, BUSINESS = "11100000000013338W002", "11100000000013338W001"
DATA_KEY = secrets.token_bytes(32)
SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨"


def id_number(serial: int) -> str:
    body = f"330106196{serial % 10}0{1 + serial % 9}1{serial % 10}{100 + serial:03d}"
    return body + id_number_check_char(body)


def person(i: int) -> dict[str, Any]:
    return {"holder": {"name": f"{SURNAMES[i % 16]}{'一二三四五六七八九十'[i % 10]}{i}号", "code": id_number(i)},
            "number": f"D{i:08d}", "validUntil": "2032-01-01",
            "ext": {"licenceClass": "C1", "address": f"浙江省杭州市西湖区文三路{i}号", "birthDate": "1960-01-01"}}  # fmt: skip


# ─── fixtures ────────────────────────────────────────────────────────────────────────────


def _databases() -> list[Any]:
    return ["sqlite", "postgresql"]


@pytest.fixture(params=_databases())
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'issuer.sqlite'}"
        return
    admin = os.environ.get("ECERT_TEST_POSTGRES_URL")
    if not admin:
        pytest.skip("ECERT_TEST_POSTGRES_URL is not set (./scripts/postgres.sh)")
    with postgres_database(admin) as url:
        yield url


@pytest.fixture
def made(database: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database)
    migrate(engine)
    factory = sessions(engine)
    with factory.begin() as session:
        session.add_all([Agency(code=AGENCY, name="杭州市公安局交通警察支队", region="330100"),
                         Agency(code=OTHER, name="广州市公安局交通警察支队", region="440100")])  # fmt: skip
    yield factory
    engine.dispose()


@pytest.fixture
def index() -> BlindIndex:
    return BlindIndex(secrets.token_bytes(32))


@pytest.fixture
def service(made: sessionmaker[Session], index: BlindIndex) -> Iterator[IssuerService]:
    signer = Account.create()
    made_service = IssuerService(made, DATA_KEY, chain_id=31337, registry_address="0x" + "11" * 20,
                                 signer_for=lambda _code: signer, processes=1, blind_index=index)  # fmt: skip
    yield made_service
    made_service.close()


class Grants:
    def check(self, _runtime: Any, _agency: str, type_code: str) -> str:
        return type_code


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def staff(made: sessionmaker[Session], clock: Clock) -> IssuerStaff:
    return console_staff(made, clock)


@pytest.fixture
def app(made: sessionmaker[Session], service: IssuerService, staff: IssuerStaff, tmp_path: Path) -> FastAPI:
    runtime = SimpleNamespace(
        sessions=made, service=service, workspace=SimpleNamespace(settings=SimpleNamespace(home=tmp_path)),
        settings=SimpleNamespace(public_url=None, verifier_url="http://127.0.0.1:8002",
                                 load_data_key=lambda _core: DATA_KEY),
    )  # fmt: skip
    return console_app(staff, runtime, console_certificates.install, grants=Grants())


def signed_in(app: FastAPI, staff: IssuerStaff, clock: Clock, role: Role, agency: str = AGENCY,
              lang: str = "zh") -> httpx.Client:  # fmt: skip
    username = f"{role.value}{secrets.token_hex(3)}"
    made = staff.add(agency, role, username, username, PASSWORD)
    client = browser(app)
    assert sign_in(client, username, made.secret, clock, lang).status_code == 303
    clock.next_step()
    return client


def issued(service: IssuerService, records: list[dict[str, Any]], agency: str = AGENCY) -> list[str]:
    job = service.submit(agency, DRIVING, records, type_name="机动车驾驶证")
    assert not job.errors, job.errors
    return job.identifiers


def trail(made: sessionmaker[Session], action: str) -> list[AuditLogEntry]:
    with made() as session:
        return list(session.scalars(select(AuditLogEntry).where(AuditLogEntry.action == action)))


def hits(html: str) -> list[str]:
    return re.findall(r'data-hit="([^"]+)"', html)


# ─── the blind index ─────────────────────────────────────────────────────────────────────


def test_the_index_is_keyed_normalised_and_per_agency() -> None:
    index, other_key = BlindIndex(b"k" * 32), BlindIndex(b"q" * 32)
    code = id_number(7)
    assert normalise(HOLDER_CODE, " 3301 0619 " + code[8:].lower()) == normalise(
        HOLDER_CODE, "33010619" + code[8:]
    )
    assert normalise(HOLDER_NAME, "杭州　ＡＢＣ（集团）  有限公司") == normalise(
        HOLDER_NAME, "杭州 abc(集团) 有限公司"
    )
    digest = index.digest(AGENCY, HOLDER_CODE, code)
    mac = hmac.new(b"k" * 32, f"holder_code\x1f{AGENCY}\x1f{code}".encode(), hashlib.sha256).digest()
    assert digest == int.from_bytes(mac[:8], "big", signed=True)  # HMAC-SHA256's first 64 bits, a BIGINT
    assert index.digest(AGENCY, HOLDER_CODE, "３３" + code[2:].lower()) == digest  # full-width, lowercase x
    assert index.digest(AGENCY, HOLDER_CODE, code[:-1]) != digest  # a part of it: no match
    assert index.digest(OTHER, HOLDER_CODE, code) != digest  # another agency's rows are unlinkable
    assert index.digest(AGENCY, NUMBER, code) != digest  # kinds do not mix
    assert other_key.digest(AGENCY, HOLDER_CODE, code) != digest  # the key matters
    assert index.digest(AGENCY, HOLDER_NAME, "  ") is None


ROW = (Certificate.id, Certificate.number_digest, Certificate.name_digest, Certificate.code_digest)


def test_intake_fills_the_index_and_reindex_agrees(made: sessionmaker[Session], service: IssuerService,
                                                   index: BlindIndex) -> None:  # fmt: skip
    issued(service, [person(i) for i in range(3)])
    with made() as session:
        at_intake = set(session.execute(select(*ROW)).all())
    assert len(at_intake) == 3 and all(None not in row for row in at_intake)  # in each certificate's row
    assert reindex(made, index, DATA_KEY) == 0  # nothing unindexed
    assert reindex(made, index, DATA_KEY, everything=True) == 3
    with made() as session:
        again = set(session.execute(select(*ROW)).all())
    assert again == at_intake  # intake (from the records) and reindex (from the sealed fields) agree
    service.blind_index = None  # a service without the index (e.g. before the upgrade)
    issued(service, [person(3), {**person(4), "number": None}])
    assert reindex(made, index, DATA_KEY, agency=OTHER) == 0
    assert reindex(made, index, DATA_KEY, agency=AGENCY) == 2
    with made() as session:
        assert session.scalar(select(func.count()).where(Certificate.name_digest.is_not(None))) == 5
        serial = session.scalars(select(Certificate.identifier).order_by(Certificate.id.desc())).first()
    assert serial is not None
    found = index.digest(AGENCY, NUMBER, serial.rsplit(".", 3)[1])  # no number: the serial is the number
    with made() as session:
        assert session.scalar(select(func.count()).where(Certificate.number_digest == found)) == 1


# ─── search ──────────────────────────────────────────────────────────────────────────────


def test_search_matches_exact_values_only_of_the_own_agency(
    app: FastAPI, service: IssuerService, staff: IssuerStaff, clock: Clock
) -> None:
    ids = issued(service, [person(i) for i in range(4)])
    issued(service, [person(1)], agency=OTHER)  # the same holder at another agency
    client = signed_in(app, staff, clock, Role.CLERK)
    name, code = person(1)["holder"]["name"], person(1)["holder"]["code"]
    for query in ({"holder_name": name}, {"holder_name": f" {name} "}, {"holder_code": code.lower()},
                  {"holder_code": "３３" + code[2:]}, {"number": "d00000001"}, {"identifier": ids[1]},
                  {"holder_name": name, "holder_code": code}):  # fmt: skip
        page = client.get("/console/certificates", params=query)
        assert page.status_code == 200, query
        assert hits(page.text) == [ids[1]], query
    for query in ({"holder_name": name[:2]}, {"holder_code": code[:10]}, {"number": "D0000000"},
                  {"holder_name": name, "holder_code": id_number(2)}):  # fmt: skip
        assert hits(client.get("/console/certificates", params=query).text) == [], query
    other = signed_in(app, staff, clock, Role.CLERK, agency=OTHER)
    assert len(hits(other.get("/console/certificates", params={"holder_name": name}).text)) == 1
    assert ids[1] not in other.get("/console/certificates", params={"holder_name": name}).text
    assert other.get(f"/console/certificates/{ids[1]}").status_code == 404  # not theirs
    page = client.get("/console/certificates", params={"status": "revoked"})
    assert hits(page.text) == []
    bad = client.get("/console/certificates", params={"identifier": "1.2.3", "from": "2026-13-01"})
    assert (
        bad.status_code == 422 and 'data-error="identifier"' in bad.text and 'data-error="from"' in bad.text
    )


def test_search_pages_newest_first_with_masked_names(
    app: FastAPI, service: IssuerService, staff: IssuerStaff, clock: Clock
) -> None:
    records = [person(i) for i in range(45)]
    ids = issued(service, records)
    client = signed_in(app, staff, clock, Role.AUDITOR, lang="en")
    first = client.get("/console/certificates", params={"type": DRIVING, "lang": "en"})
    assert (
        hits(first.text) == ids[::-1][:20]
        and 'data-page="next"' in first.text
        and 'data-page="prev"' not in first.text
    )
    third = client.get("/console/certificates", params={"type": DRIVING, "page": 3, "lang": "en"})
    assert hits(third.text) == ids[::-1][40:] and 'data-page="next"' not in third.text
    assert 'rel="prev"' in third.text and "type=11100000000013338W002" in third.text
    for record in records[:25]:
        assert record["holder"]["name"] not in first.text + third.text
        assert record["holder"]["code"] not in first.text + third.text
    assert re.search(r"data-masked-code>3301\*{10}\d{3}[\dX]<", first.text)
    today = client.get("/console/certificates", params={"from": "2000-01-01", "to": "2000-12-31"})
    assert hits(today.text) == []
    jobs = client.get("/console/jobs?lang=en")
    assert jobs.status_code == 200 and 'data-count="pending">45<' in jobs.text


# ─── a certificate: masked, unmasked with a reason, audited ──────────────────────────────


def test_personal_data_is_masked_until_unmasked_with_a_reason_which_is_audited(
    app: FastAPI, made: sessionmaker[Session], service: IssuerService, staff: IssuerStaff, clock: Clock
) -> None:
    [identifier] = issued(service, [person(5)])
    record = person(5)
    secrets_shown = [record["holder"]["name"], record["holder"]["code"], record["ext"]["address"]]
    client = signed_in(app, staff, clock, Role.APPROVER)
    page = client.get(f"/console/certificates/{identifier}")
    assert page.status_code == 200 and 'data-fields="masked"' in page.text
    assert not any(value in page.text for value in secrets_shown)
    assert re.search(r'data-path="holder.code" data-masked>3301\*{10}', page.text)
    assert 'data-path="ext.licenceClass">C1<' in page.text  # not personal: in clear
    assert 'data-path="ext.birthDate" data-masked>****-**-**<' in page.text
    csrf = csrf_of(page.text)
    for reason in ("", "   ", "ab"):
        refused = client.post(
            f"/console/certificates/{identifier}/unmask", data={"csrf_token": csrf, "reason": reason}
        )
        assert refused.status_code == 422 and 'data-problem="UNMASK_REASON_REQUIRED"' in refused.text
        assert not any(value in refused.text for value in secrets_shown)
    refused = client.post(f"/console/certificates/{identifier}/unmask",
                          data={"csrf_token": csrf, "reason": f"持证人 {record['holder']['code']} 来电"})  # fmt: skip
    assert refused.status_code == 422 and 'data-problem="AUDIT_ENTRY_INVALID"' in refused.text
    assert trail(made, "unmask") == []
    assert (
        client.post(f"/console/certificates/{identifier}/unmask", data={"reason": "no token"}).status_code
        == 403
    )
    shown = client.post(f"/console/certificates/{identifier}/unmask",
                        data={"csrf_token": csrf, "reason": "持证人来窗口核对住址"})  # fmt: skip
    assert shown.status_code == 200 and 'data-fields="clear"' in shown.text
    assert all(value in shown.text for value in secrets_shown)
    [entry] = trail(made, "unmask")
    assert entry.subject == identifier and entry.agency == AGENCY and entry.actor.startswith("approver")
    details = json.loads(entry.details)
    assert details["reason"] == "持证人来窗口核对住址"
    assert {"holder.name", "holder.code", "ext.address", "ext.birthDate"} <= set(details["fields"])
    assert "ext.licenceClass" not in details["fields"]
    assert not any(value in entry.details for value in secrets_shown)  # the paths, never the values
    again = client.get(f"/console/certificates/{identifier}")  # shown once: masked again
    assert not any(value in again.text for value in secrets_shown)
    assert 'data-event="audit_unmask"' in again.text and "持证人来窗口核对住址" in again.text
    assert staff.audit.verify(AGENCY).ok


def test_roles_auditor_reads_only_approver_unmasks_clerk_issues(
    app: FastAPI, service: IssuerService, staff: IssuerStaff, clock: Clock
) -> None:
    [identifier] = issued(service, [person(6)])
    auditor = signed_in(app, staff, clock, Role.AUDITOR)
    for path in ("/console/jobs", "/console/certificates", f"/console/certificates/{identifier}"):
        assert auditor.get(path).status_code == 200, path
    page = auditor.get(f"/console/certificates/{identifier}")
    assert "data-unmask" not in page.text and "data-print" not in page.text
    csrf = csrf_of(page.text)
    assert auditor.post(f"/console/certificates/{identifier}/unmask",
                        data={"csrf_token": csrf, "reason": "just looking"}).status_code == 403  # fmt: skip
    assert auditor.get("/console/issue").status_code == 403
    assert auditor.post("/console/issue", data={"csrf_token": csrf, "type": DRIVING}).status_code == 403
    assert (
        auditor.post(f"/console/certificates/{identifier}/claim-code", data={"csrf_token": csrf}).status_code
        == 403
    )
    approver = signed_in(app, staff, clock, Role.APPROVER)
    assert "data-unmask" in approver.get(f"/console/certificates/{identifier}").text
    assert approver.get("/console/issue").status_code == 403
    admin = signed_in(app, staff, clock, Role.ADMIN)
    assert admin.get("/console/certificates").status_code == 403
    assert browser(app).get("/console/certificates").status_code == 303  # not signed in: to the sign-in page


# ─── the issue form ──────────────────────────────────────────────────────────────────────


def test_the_issue_form_checks_each_field_and_issues_through_the_intake(
    app: FastAPI, made: sessionmaker[Session], staff: IssuerStaff, clock: Clock
) -> None:
    clerk = signed_in(app, staff, clock, Role.CLERK, lang="en")
    form = clerk.get(f"/console/issue?type={BUSINESS}&lang=en")
    assert form.status_code == 200
    for label in ("Unified social credit code", "Legal representative", "Business scope", "Valid until"):
        assert label in form.text
    csrf = csrf_of(form.text)
    token = re.search(r'name="token" value="([0-9a-f]+)"', form.text)
    assert token
    good = {"csrf_token": csrf, "type": BUSINESS, "token": token.group(1), "holder__name": "杭州示例科技有限公司",
            "holder__code": "91330106MA2H3XY60L", "validUntil": "2046-05-31", "ext__legalRepresentative": "张三",
            "ext__scope": "软件开发\n批发和零售业"}  # fmt: skip
    for change, field, code in (
        ({"holder__code": "91330106MA2H3XY60A"}, "holder.code", "ID_CHECK_CHAR"),
        ({"holder__code": "91330106MA2H3XY60L", "holder__codeType": "111"}, "holder.code", "ID_FORMAT"),
        (
            {"holder__code": id_number(3)[:-1] + ("0" if id_number(3)[-1] != "0" else "1")},
            "holder.code",
            "ID_CHECK_CHAR",
        ),
        ({"holder__name": " "}, "holder.name", "FIELD_MISSING"),
        ({"validUntil": "2046-02-30"}, "validUntil", "FIELD_INVALID"),
        ({"validFrom": "2030-01-01", "validUntil": "2029-01-01"}, "validUntil", "FIELD_INVALID"),
    ):
        refused = clerk.post("/console/issue?lang=en", data={**good, **change})
        assert refused.status_code == 422, change
        error = re.search(
            rf'<p class="field-error" id="e-[^"]+" data-error="{re.escape(field)}">[^<]*<span class="code">(\w+)<',
            refused.text,
        )
        assert error and error.group(1) == code, (change, refused.text[-3000:])
        assert (
            'value="杭州示例科技有限公司"' in refused.text or field == "holder.name"
        )  # what was typed stays
    assert trail(made, "issue") == []
    done = clerk.post("/console/issue?lang=en", data={**good, "holder__code": "９１３３０１０６ma2h3xy60l"})
    assert done.status_code == 303, done.text[-2000:]
    identifier = done.headers["location"].split("/console/certificates/")[1].split("?")[0]
    page = clerk.get(done.headers["location"])
    assert page.status_code == 200 and "data-issued" in page.text
    with made() as session:
        cert = session.scalar(select(Certificate).where(Certificate.identifier == identifier))
        assert cert is not None and cert.state == "pending" and cert.type_code == BUSINESS
        [row] = session.execute(select(*ROW).where(Certificate.id == cert.id)).all()
        assert None not in row  # number, name and code
    [entry] = trail(made, "issue")
    assert entry.subject == identifier and json.loads(entry.details)["what"] == "certificate"
    assert clerk.post("/console/issue?lang=en", data={**good, "type": "nope"}).status_code == 422
    found = clerk.get("/console/certificates", params={"holder_code": "91330106MA2H3XY60L"})
    assert hits(found.text) == [identifier]


# ─── print, claim code, history ──────────────────────────────────────────────────────────


def _anchor_by_hand(made: sessionmaker[Session], identifier: str) -> None:
    """What the anchoring worker would do, without a chain: a batch of one, confirmed."""
    with made.begin() as session:
        cert = session.scalar(select(Certificate).where(Certificate.identifier == identifier))
        assert cert is not None
        batch = Batch(agency_code=AGENCY, type_code=cert.type_code, root=batch_tree([cert.digest]).root, count=1,
                      state="confirmed", tx_hash="0x" + "ab" * 32, block_number=42)  # fmt: skip
        session.add(batch)
        session.flush()
        session.add(BatchEvent(batch_id=batch.id, from_state="sending", to_state="mined", block_number=42))
        cert.batch_id, cert.batch_index, cert.state = batch.id, 0, "confirmed"


def test_print_and_a_new_claim_code_are_audited_and_the_history_shows_the_anchor(
    app: FastAPI, made: sessionmaker[Session], service: IssuerService, staff: IssuerStaff, clock: Clock
) -> None:
    [identifier] = issued(service, [person(8)])
    clerk = signed_in(app, staff, clock, Role.CLERK)
    early = clerk.get(f"/console/certificates/{identifier}/print.pdf")
    assert early.status_code == 409 and 'data-problem="CERT_NOT_READY"' in early.text
    _anchor_by_hand(made, identifier)
    pdf = clerk.get(f"/console/certificates/{identifier}/print.pdf")
    assert (
        pdf.status_code == 200
        and pdf.headers["content-type"] == "application/pdf"
        and pdf.content[:5] == b"%PDF-"
    )
    [printed] = trail(made, "print")
    assert printed.subject == identifier
    page = clerk.get(f"/console/certificates/{identifier}")
    claim = clerk.post(
        f"/console/certificates/{identifier}/claim-code", data={"csrf_token": csrf_of(page.text)}
    )
    assert claim.status_code == 200
    code = re.search(r"data-claim-code>([A-Z0-9-]{14})<", claim.text)
    assert code
    [entry] = [e for e in trail(made, "issue") if json.loads(e.details).get("what") == "claim_code"]
    assert code.group(1) not in entry.details and code.group(1).replace("-", "") not in entry.details
    assert service.redeem_claim(code.group(1)).fields()["holder"]["name"] == person(8)["holder"]["name"]
    history = clerk.get(f"/console/certificates/{identifier}").text
    assert code.group(1) not in history  # shown once
    assert "0x" + "ab" * 32 in history and "data-block>42<" in history
    for event in ("issued", "batch", "audit_print", "audit_issue"):
        assert f'data-event="{event}"' in history, event
    assert "data-verifications" in history and "签发机构不掌握" in history


# ─── the index on the app's service ──────────────────────────────────────────────────────


def test_ecert_issuer_reindex_fills_the_index_of_certificates_stored_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ecert issuer reindex`: certificates stored before the index (or by a service without it)
    are indexed with the home's keys; a second run has nothing to do; `--all` redoes them all."""
    from issuer.blind_index import blind_index_for
    from issuer.cli import reindex as reindex_command
    from issuer.runtime import IssuerRuntime
    from registry.workspace import Workspace

    monkeypatch.setenv("ECERT_HOME", str(tmp_path / ".ecert"))
    runtime = IssuerRuntime.open(Workspace())
    with runtime.sessions.begin() as session:
        session.add(Agency(code=AGENCY, name="杭州市公安局交通警察支队", region="330100"))
    signer = Account.create()
    stored = IssuerService(runtime.sessions, runtime.settings.load_data_key(runtime.workspace.settings),
                           chain_id=31337, registry_address="0x" + "11" * 20, signer_for=lambda _code: signer,
                           processes=1)  # fmt: skip
    [identifier] = stored.submit(AGENCY, DRIVING, [person(2)]).identifiers
    index = blind_index_for(runtime)
    runtime.close()
    for everything, said in ((False, "indexed 1 certificate(s)"), (False, "indexed 0 certificate(s)"),
                             (True, "indexed 1 certificate(s)")):  # fmt: skip
        reindex_command(agency=None, everything=everything)
        assert said in capsys.readouterr().out
    pages = CertificatePages(
        runtime.sessions, runtime.settings.load_data_key(runtime.workspace.settings), index
    )
    found = pages.search(AGENCY, SearchQuery(holder_code=person(2)["holder"]["code"]))
    assert [hit.identifier for hit in found.hits] == [identifier]
