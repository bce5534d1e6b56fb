"""Attacks on holders' correction requests (issue 12, point 9): the public routes
(`POST /v1/corrections`, `GET /v1/corrections/{id}`, `issuer/api/corrections.py`) of
`ecert serve issuer` in a subprocess on a real anvil chain over real HTTP, and the console's queue
(`issuer/api/console_corrections.py`) served over httpx → ASGI with the same issuer's runtime
opened in this process on the served database. Races are 50 requests at once; hostile bodies
are sent as raw bytes. The six holes this attack found (racing fixes, one holder's failures
locking out a wallet server, a retry racing its first request, audits of lost races, control
characters) are fixed; their tests guard them."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))  # the issuer as operators run it
sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))  # the console harness
from console_harness import console_app, console_staff
from issuer_server import AGENCY_A, AGENCY_B, TYPE, IssuerHome, IssuerServer, issuer_home, issuer_server
from service_process import wait_for
from test_issuer_staff import PASSWORD, Clock, browser, csrf_of, sign_in

import issuer.api.console_corrections as console_corrections
from issuer.audit import AuditLog
from issuer.models import Certificate
from issuer.runtime import IssuerRuntime
from issuer.staff import IssuerStaff, Role
from registry.certificate.presentation import Presentation
from registry.errors import EcertError
from registry.settings import Settings
from registry.workspace import Workspace

pytestmark = pytest.mark.chain

PROBLEM = "application/problem+json"
HOLDER = "11010519491231002X"  # valid 公民身份号码
RACE = 50


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IssuerHome]:
    with issuer_home(tmp_path_factory.mktemp("attack-corrections")) as made:
        yield made


@pytest.fixture(scope="module")
def server(home: IssuerHome) -> Iterator[IssuerServer]:
    with issuer_server(home, "attack-corrections") as running:
        yield running


@pytest.fixture(scope="module")
def packages(server: IssuerServer) -> list[dict[str, Any]]:
    """Ten certificates of agency A, anchored, their full holder packages as the API gives them."""
    with server.client(server.api_key(AGENCY_A, "issue,status")) as api:
        records = [{"holder": {"name": f"李{n}", "code": HOLDER}, "validUntil": "2040-12-31",
                    "ext": {"address": f"杭州市上城区{n}号"}} for n in range(10)]  # fmt: skip
        job = api.post("/v1/batches", json={"typeCode": TYPE, "records": records}).json()
        done = wait_for(lambda: (j := api.get(f"/v1/jobs/{job['id']}").json())["done"] and j)
        return [api.get(f"/v1/certificates/{i}/package").json() for i in done["identifiers"]]


@pytest.fixture(scope="module")
def runtime(home: IssuerHome, server: IssuerServer) -> Iterator[IssuerRuntime]:
    """The issuer's runtime in this process, on the served database (the console's side)."""
    settings = Settings(home=home.root / ".ecert", rpc_url=home.rpc_url, keystore_scrypt_n=1024,
                        keystore_password=SecretStr(home.env["ECERT_KEYSTORE_PASSWORD"]))  # fmt: skip
    opened = IssuerRuntime.open(Workspace(settings))
    yield opened
    opened.close()


def _body(package: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"package": package, "holderCode": HOLDER, "kind": "field", "field": "holder.name",
            "message": "姓名写错了", **fields}  # fmt: skip


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def _race(url: str, count: int, send: Any) -> list[httpx.Response]:
    """`count` requests at once, each on its own connection."""

    def one(_n: int) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=60) as client:
            answer: httpx.Response = send(client)
            return answer

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


# ─── races ───────────────────────────────────────────────────────────────────────────────


def test_50_parallel_requests_without_a_key_make_one_open_request(
    server: IssuerServer, packages: list[dict[str, Any]]
) -> None:
    """The same package 50 times at once: one 201, the others 409 with its id; never a 500."""
    body = _body(packages[0], field="ext.address", message="门牌号错了")
    answers = _race(server.url, RACE, lambda c: c.post("/v1/corrections", json=body))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == 1, statuses
    made = next(a.json() for a in answers if a.status_code == 201)
    for answer in answers:
        if answer.status_code != 201:
            assert _problem(answer, 409, "CORRECTION_ALREADY_OPEN")["existingId"] == made["id"]


def test_50_parallel_retries_with_one_idempotency_key_make_one_request(
    server: IssuerServer, packages: list[dict[str, Any]]
) -> None:
    """One request; every answer names it (200 the first request, or 409 its id); never a 500."""
    body = _body(packages[1], field="ext.address", message="门牌号错了")
    headers = {"Idempotency-Key": "wallet-retry-" + secrets.token_hex(4)}
    answers = _race(server.url, RACE, lambda c: c.post("/v1/corrections", json=body, headers=headers))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == 1 and set(statuses) <= {200, 201, 409}, statuses
    first = next(a.json() for a in answers if a.status_code == 201)
    for answer in answers:
        named = answer.json().get("existingId") if answer.status_code == 409 else answer.json()["id"]
        assert named == first["id"]
        if answer.status_code == 200:
            assert answer.json()["token"] == first["token"]


def test_a_retry_racing_the_first_request_gets_the_first_request(
    packages: list[dict[str, Any]], runtime: IssuerRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving made certain: the first request commits between the retry's look-up of
    its key and its insert."""
    corrections = runtime.corrections
    args = (packages[1], HOLDER, "field", "holder.name", "姓名写错了", "wallet-" + secrets.token_hex(4))
    look_up = corrections._retry
    first: list[Any] = []

    def late(identifier: str, key: str, request_hash: str) -> Any:
        found = look_up(identifier, key, request_hash)
        if found is None and not first:
            first.append(None)
            first[0] = corrections.create(*args)  # the first request commits meanwhile
        return found

    monkeypatch.setattr(corrections, "_retry", late)
    again = corrections.create(*args)
    assert (again.new, again.view.id, again.token) == (False, first[0].view.id, first[0].token)


def test_50_parallel_fixes_make_one_renewal(
    server: IssuerServer, packages: list[dict[str, Any]], runtime: IssuerRuntime
) -> None:
    """What the console's fix calls, 50 times at once for one request: one version + 1, one
    answer; the others are refused (CORRECTION_ANSWERED or a conflict), never a second renewal."""
    old = Presentation.from_json(packages[2]).values()["identifier"]
    with server.client() as public:
        made = public.post("/v1/corrections", json=_body(packages[2], kind="renewal", field=None)).json()
    clerk = console_staff(runtime.sessions, Clock()).add(AGENCY_A, Role.CLERK, "race-clerk", "张华", PASSWORD)

    def fix(_n: int) -> str:
        try:
            view = runtime.corrections.fix(AGENCY_A, made["id"], clerk.id, clerk.username,
                                           {"validUntil": "2045-12-31"}, "已换发")  # fmt: skip
        except Exception as exc:  # refused: the code names why
            return type(exc).__name__ + ":" + str(getattr(exc, "code", ""))
        return "fixed:" + str(view.new_identifier)

    with ThreadPoolExecutor(RACE) as pool:
        outcomes = list(pool.map(fix, range(RACE)))
    fixed = [o for o in outcomes if o.startswith("fixed:")]
    assert len(fixed) == 1, outcomes
    assert all(
        o.endswith("CORRECTION_ANSWERED") or o.endswith("CONFLICT") for o in outcomes if o not in fixed
    ), outcomes
    with runtime.sessions() as session:
        renewals = session.scalar(
            select(func.count()).select_from(Certificate).where(Certificate.previous_identifier == old)
        )
    assert renewals == 1


def test_two_requests_about_one_certificate_fixed_together_make_one_renewal(
    server: IssuerServer,
    packages: list[dict[str, Any]],
    runtime: IssuerRuntime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A field request and a renewal request about one certificate, fixed by two clerks at once
    (both let into the renewal's store together): one version + 1; the other answer is a structured
    refusal (CERT_SUPERSEDED or a conflict), never a second version + 1 nor a bare database error."""
    old = Presentation.from_json(packages[8]).values()["identifier"]
    with server.client() as public:
        made = [public.post("/v1/corrections", json=_body(packages[8], **kw)).json()
                for kw in ({"field": "ext.address"}, {"kind": "renewal", "field": None})]  # fmt: skip
    clerk = console_staff(runtime.sessions, Clock()).add(
        AGENCY_A, Role.CLERK, "race-clerk3", "张华", PASSWORD
    )
    service = runtime.corrections._service
    store = service._store
    barrier = threading.Barrier(2)

    def together(*args: Any, **kwargs: Any) -> Any:  # both past the superseded check, if both get there
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=10)
        return store(*args, **kwargs)

    monkeypatch.setattr(service, "_store", together)

    def fix(request: dict[str, Any]) -> str:
        try:
            view = runtime.corrections.fix(AGENCY_A, request["id"], clerk.id, clerk.username,
                                           {"validUntil": "2046-12-31"})  # fmt: skip
        except EcertError as exc:
            return "refused:" + exc.code.value
        except Exception as exc:  # a bare error: the console would answer 500
            return "error:" + type(exc).__name__
        return "fixed:" + str(view.new_identifier)

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(fix, made))
    with runtime.sessions() as session:
        renewals = session.scalar(
            select(func.count()).select_from(Certificate).where(Certificate.previous_identifier == old)
        )
    assert renewals == 1, outcomes
    assert sorted(o.split(":")[0] for o in outcomes) == ["fixed", "refused"], outcomes


def test_two_fixes_at_once_are_audited_once(
    server: IssuerServer,
    packages: list[dict[str, Any]],
    runtime: IssuerRuntime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two clerks press fix together: both are let to the audit at once (a barrier there), if
    both get that far; one renewal, one answer, so one entry."""
    with server.client() as public:
        made = public.post("/v1/corrections", json=_body(packages[3], kind="renewal", field=None)).json()
    clerk = console_staff(runtime.sessions, Clock()).add(
        AGENCY_A, Role.CLERK, "race-clerk2", "张华", PASSWORD
    )
    audit = runtime.corrections._audit
    append = audit.append
    barrier = threading.Barrier(2)

    def together(*args: Any, **kwargs: Any) -> Any:
        with contextlib.suppress(threading.BrokenBarrierError):  # the other one never came: fine
            barrier.wait(timeout=10)
        return append(*args, **kwargs)

    monkeypatch.setattr(audit, "append", together)

    def fix(_n: int) -> None:
        with contextlib.suppress(Exception):  # the refused one: counted below
            runtime.corrections.fix(
                AGENCY_A, made["id"], clerk.id, clerk.username, {"validUntil": "2045-12-31"}
            )

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(fix, range(2)))
    entries = [e for e in AuditLog(runtime.sessions).entries(AGENCY_A)
               if e.action == "correction_fix" and e.details.get("request") == made["id"]]  # fmt: skip
    assert len(entries) == 1, len(entries)


# ─── hostile input ───────────────────────────────────────────────────────────────────────


def _raw(client: httpx.Client, payload: bytes) -> httpx.Response:
    return client.post("/v1/corrections", content=payload, headers={"Content-Type": "application/json"})


def test_hostile_bodies_are_refused_with_structured_errors(
    home: IssuerHome, packages: list[dict[str, Any]]
) -> None:
    """On a server of its own with a generous failure budget: the refusals are the point here,
    the rate limit is attacked below."""
    server = IssuerServer(home, "attack-corrections-hostile")
    server.env["ECERT_ISSUER_CLAIM_RATE_PER_MIN"] = "6000"
    server.start()
    try:
        package = packages[5]
        values = Presentation.from_json(package).values()
        with server.client() as public:
            for field in ("holder.name/../x", "../../etc/passwd", "holder", "__proto__"):
                _problem(
                    public.post("/v1/corrections", json=_body(package, field=field)), 422, "FIELD_UNKNOWN"
                )
            _problem(
                public.post("/v1/corrections", json=_body(package, message="x" * 100_000)),
                422,
                "REQUEST_INVALID",
            )
            _problem(
                public.post("/v1/corrections", json=_body(package, message="\u3000 \n\t")),
                422,
                "REQUEST_INVALID",
            )
            fullwidth = HOLDER.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
            _problem(public.post("/v1/corrections", json=_body(package, holderCode=fullwidth)), 403,
                     "CORRECTION_NOT_YOURS")  # fmt: skip
            broken = (
                json.dumps(_body(package), ensure_ascii=False).encode().replace("姓名".encode(), b"\xff\xfe")
            )
            answer = _raw(public, broken)
            assert 400 <= answer.status_code < 500 and answer.headers["content-type"].startswith(PROBLEM), (
                answer.text
            )
            assert _raw(public, b"{" * 50_000).status_code in (400, 422)
            # JSON with duplicate keys: the last "kind" wins for the parser; no 500 either way
            dup = json.dumps(_body(package))[:-1] + ', "kind": "nonsense"}'
            _problem(_raw(public, dup.encode()), 422, "REQUEST_INVALID")
            # a disclosure, a package from another chain or registry, altered values under the old digest
            partial = Presentation.from_json(package).disclose(["holder.name"]).to_json()
            where = package["registry"]
            other_chain = {**package, "registry": {**where, "chainId": int(where["chainId"]) + 1}}
            other_registry = {**package, "registry": {**where, "address": "0x" + "11" * 20}}
            altered = json.loads(
                json.dumps(package, ensure_ascii=False).replace(str(values["holder.name"]), "李雷")
            )
            assert altered != package
            for bad in (partial, other_chain, other_registry, altered, {}, {"leaves": "x" * 10}):
                _problem(public.post("/v1/corrections", json=_body(bad)), 404, "CERT_NOT_FOUND")
            # a NUL byte anywhere in the body: the text guard's 400, before the service
            for nul in (_body(package, message="a\x00b"), _body(package, field="holder.name\x00")):
                _problem(public.post("/v1/corrections", json=nul), 400, "TEXT_INVALID")
    finally:
        server.stop()


def test_control_characters_in_the_message_are_refused(
    server: IssuerServer, packages: list[dict[str, Any]]
) -> None:
    with server.client() as public:
        for field, message in (("holder.name", "red \x1b[31m text"), ("ext.address", "abc\u202edcba")):
            answer = public.post("/v1/corrections", json=_body(packages[6], field=field, message=message))
            _problem(answer, 422, "REQUEST_INVALID")


# ─── the OFD licence and direct status changes by API key ────────────────────────────────


def test_ofd_and_status_changes_by_key_stay_with_the_agency_and_are_audited(
    server: IssuerServer, packages: list[dict[str, Any]], runtime: IssuerRuntime
) -> None:
    identifier = Presentation.from_json(packages[9]).values()["identifier"]
    ofd, status = f"/v1/certificates/{identifier}/licence.ofd", f"/v1/certificates/{identifier}/status"
    suspend = {"status": "suspended", "reason": 2, "note": "核查中"}
    other_key, issue_key, status_key = (server.api_key(AGENCY_B, "issue,status"), server.api_key(AGENCY_A, "issue"),
                                        server.api_key(AGENCY_A, "status"))  # fmt: skip
    audit = AuditLog(runtime.sessions)
    before = len(list(audit.entries(AGENCY_A)))
    with server.client() as anonymous:
        assert (
            anonymous.get(ofd).status_code == 401 and anonymous.post(status, json=suspend).status_code == 401
        )
    with server.client("not-a-key") as forged:
        assert forged.get(ofd).status_code == 401 and forged.post(status, json=suspend).status_code == 401
    with server.client(other_key) as other:
        assert other.get(ofd).status_code == 403 and other.post(status, json=suspend).status_code == 403
    with server.client(issue_key) as issuing:
        assert issuing.post(status, json=suspend).status_code == 403
    assert len(list(audit.entries(AGENCY_A))) == before  # nothing refused was done, nothing recorded
    with server.client(status_key) as own:
        printed = own.get(ofd)
        assert printed.status_code == 200 and printed.headers["content-type"].startswith("application/ofd")
        changed = own.post(status, json=suspend)
        assert changed.status_code == 200, changed.text
        assert own.post(status, json={"status": "active", "reason": 1}).status_code == 200
    entries = [e for e in list(audit.entries(AGENCY_A))[before:] if e.subject == identifier]
    assert [(e.action, e.actor.startswith("api-key:")) for e in entries] == [
        ("print", True), ("status_change", True), ("status_change", True)]  # fmt: skip
    assert entries[1].details["direct"] is True and "核查中" not in json.dumps(entries[1].details)
    assert audit.verify(AGENCY_A).ok


# ─── the console ─────────────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def console(runtime: IssuerRuntime) -> tuple[Any, IssuerStaff, Clock]:
    clock = Clock()
    staff = console_staff(runtime.sessions, clock)
    return console_app(staff, runtime, console_corrections.install), staff, clock


def _signed_in(console: tuple[Any, IssuerStaff, Clock], role: Role, agency: str = AGENCY_A) -> httpx.Client:
    app, staff, clock = console
    username = f"{role.value}{secrets.token_hex(3)}"
    made = staff.add(agency, role, username, username, PASSWORD)
    client = browser(app, address=f"10.0.{secrets.randbelow(250)}.{secrets.randbelow(250)}")
    assert sign_in(client, username, made.secret, clock).status_code == 303
    clock.next_step()
    return client


def test_the_console_keeps_requests_to_their_agency_and_roles(
    server: IssuerServer, packages: list[dict[str, Any]], console: tuple[Any, IssuerStaff, Clock]
) -> None:
    message = "秘密-" + secrets.token_hex(4)
    with server.client() as public:
        made = public.post(
            "/v1/corrections", json=_body(packages[7], kind="renewal", field=None, message=message)
        )
        assert made.status_code == 201, made.text
    request_id = made.json()["id"]
    app = console[0]
    with browser(app) as anonymous:  # no session: to the sign-in page, or 401 for a POST
        page = anonymous.get(f"/console/corrections/{request_id}")
        assert page.status_code in (302, 303, 307) and message not in page.text
        assert anonymous.post(f"/console/corrections/{request_id}/refuse", data={"reason": "不予更正"}).status_code in (
            401, 403)  # fmt: skip
    other = _signed_in(console, Role.ADMIN, AGENCY_B)  # another agency's staff: not found, like none
    page = other.get(f"/console/corrections/{request_id}")
    assert page.status_code == 404 and message not in page.text
    assert request_id not in other.get("/console/corrections").text
    token = csrf_of(other.get("/console/corrections").text)
    refused = other.post(f"/console/corrections/{request_id}/refuse?lang=zh", data={"csrf_token": token, "reason": "不予更正"},
                         headers={"Origin": "http://testserver"})  # fmt: skip
    assert refused.status_code == 404
    auditor = _signed_in(console, Role.AUDITOR)  # reads the queue, not the message; answers nothing
    page = auditor.get(f"/console/corrections/{request_id}")
    assert page.status_code == 200 and message not in page.text
    token = csrf_of(page.text)
    for action, data in (
        ("refuse", {"reason": "不予更正"}),
        ("unmask", {"reason": "核对信息"}),
        ("fix", {"value": "x"}),
    ):
        answer = auditor.post(f"/console/corrections/{request_id}/{action}?lang=zh",
                              data={"csrf_token": token, **data}, headers={"Origin": "http://testserver"})  # fmt: skip
        assert answer.status_code == 403, (action, answer.status_code)
    clerk = _signed_in(console, Role.CLERK)
    page = clerk.get(f"/console/corrections/{request_id}")
    assert page.status_code == 200 and message in page.text
    token = csrf_of(page.text)
    no_csrf = clerk.post(f"/console/corrections/{request_id}/refuse?lang=zh", data={"reason": "不予更正"},
                         headers={"Origin": "http://testserver"})  # fmt: skip
    cross = clerk.post(f"/console/corrections/{request_id}/refuse?lang=zh", data={"csrf_token": token, "reason": "不予更正"},
                       headers={"Origin": "http://evil.example"})  # fmt: skip
    assert no_csrf.status_code == 403 and cross.status_code == 403
    done = clerk.post(f"/console/corrections/{request_id}/refuse?lang=zh", data={"csrf_token": token, "reason": "不予更正"},
                      headers={"Origin": "http://testserver"})  # fmt: skip
    assert done.status_code == 303, done.text
    again = clerk.post(f"/console/corrections/{request_id}/refuse?lang=zh",  # the same form replayed
                       data={"csrf_token": token, "reason": "再次拒绝"}, headers={"Origin": "http://testserver"})  # fmt: skip
    assert again.status_code == 409 and re.search("CORRECTION_ANSWERED", again.text)
    with server.client() as public:  # the holder's token still reads the answer, only the answer
        read = public.get(
            f"/v1/corrections/{request_id}", headers={"X-Correction-Token": made.json()["token"]}
        ).json()
    assert (read["status"], read["reason"]) == ("refused", "不予更正")


# ─── tokens (last: it spends this address's failure budget) ──────────────────────────────────────────────────────────────────────────────


def test_a_wrong_token_is_the_unknown_id_and_guessing_is_rate_limited(
    server: IssuerServer, packages: list[dict[str, Any]]
) -> None:
    with server.client() as public:
        made = public.post("/v1/corrections", json=_body(packages[4], kind="renewal", field=None)).json()
        assert set(made) >= {"id", "token"}
    with server.client() as public:
        wrong = public.get(f"/v1/corrections/{made['id']}", headers={"X-Correction-Token": "A" * 32})
        unknown = public.get("/v1/corrections/cr_" + "A" * 22, headers={"X-Correction-Token": "A" * 32})
        missing = public.get(f"/v1/corrections/{made['id']}")
        bodies = []
        for answer in (wrong, unknown, missing):
            body = _problem(answer, 404, "CORRECTION_NOT_FOUND")
            bodies.append({k: v for k, v in body.items() if k != "instance"})
            assert "message" not in body and made["token"] not in answer.text
        assert bodies[0] == bodies[1] == bodies[2]
        limited = [public.get(f"/v1/corrections/{made['id']}", headers={"X-Correction-Token": secrets.token_urlsafe(24)})
                   for _ in range(30)]  # fmt: skip
        codes = [a.status_code for a in limited]
        assert 429 in codes and set(codes) <= {404, 429}, codes
        assert all(int(a.headers.get("retry-after", "0")) >= 1 for a in limited if a.status_code == 429)


def test_one_holders_failures_do_not_lock_out_another_behind_the_same_address(
    server: IssuerServer, packages: list[dict[str, Any]]
) -> None:
    """Runs after the test above, from the same address, with the budget spent again here."""
    with server.client() as public:
        for _ in range(30):  # someone guessing tokens of one request, or a wallet retrying a refusal
            public.get(
                "/v1/corrections/cr_" + "B" * 22, headers={"X-Correction-Token": secrets.token_urlsafe(24)}
            )
        other = public.post("/v1/corrections", json=_body(packages[4], field="ext.address", message="门牌号"))
        assert other.status_code == 201, other.text
