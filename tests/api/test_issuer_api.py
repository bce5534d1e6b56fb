"""The issuer API over real HTTP: `ecert serve issuer` in a subprocess on a real anvil chain,
keys made with `ecert issuer api-key create`, packages checked by the verifier's pipeline.

Tests marked `@both_backends` also run on PostgreSQL when ECERT_TEST_POSTGRES_URL is set (a
throwaway database is created on that server and dropped afterwards)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from databases import postgres_database
from issuer_server import AGENCY_A, AGENCY_B, POSTGRES_ENV, TYPE, IssuerHome, IssuerServer
from service_process import wait_for
from sqlalchemy import create_engine, text

from registry.certificate.identifiers import build_licence_id
from registry.certificate.links import read_scanned
from registry.certificate.presentation import Presentation
from registry.qr import decode_qr
from verifier.chain_reader import RegistryReader
from verifier.checks.base import Outcome
from verifier.pipeline import verify_presentation

pytestmark = pytest.mark.chain

PROBLEM = "application/problem+json"
PERSON = "11010519491231002X"  # valid 公民身份号码
PERSON_BAD_CHECK = "110105194912310021"  # same with a wrong check character
COMPANY = "91110000600037341L"  # valid 统一社会信用代码
NOT_GRANTED = "11100000000013338W002"  # well formed, never granted to our agencies
HAS_PRINTING = importlib.util.find_spec("issuer.printing") is not None


def both_backends(test):
    test.backends = ("sqlite", "postgres")
    return test


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "server" in metafunc.fixturenames:
        backends = getattr(metafunc.function, "backends", ("sqlite",))
        metafunc.parametrize("server", backends, indirect=True, scope="module")


# ─── fixtures ────────────────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IssuerHome]:
    made = IssuerHome(tmp_path_factory.mktemp("issuer-api"))
    try:
        made.set_up()
        yield made
    finally:
        made.tear_down()


def _run(home: IssuerHome, backend: str, database_url: str | None) -> Iterator[IssuerServer]:
    running = IssuerServer(home, backend, database_url)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, home: IssuerHome) -> Iterator[IssuerServer]:
    if request.param == "postgres":
        admin_url = os.environ.get(POSTGRES_ENV)
        if not admin_url:
            pytest.skip(f"{POSTGRES_ENV} is not set: the PostgreSQL run is skipped")
        with postgres_database(admin_url) as database_url:
            yield from _run(home, "postgres", database_url)
    else:
        yield from _run(home, "sqlite", None)


KEYS = {"a": (AGENCY_A, "issue,status"), "a_issue": (AGENCY_A, "issue"), "a_status": (AGENCY_A, "status"),
        "a_doomed": (AGENCY_A, "issue"), "b": (AGENCY_B, "admin")}  # fmt: skip


@pytest.fixture(scope="module")
def keys(server: IssuerServer) -> dict[str, str]:
    """API keys made with `ecert issuer api-key create`, in parallel; the PostgreSQL run needs one."""
    wanted = {"a": KEYS["a"]} if server.database_url.startswith("postgresql") else KEYS
    with ThreadPoolExecutor(len(wanted)) as pool:
        made = {
            name: pool.submit(server.api_key, agency, scopes, name)
            for name, (agency, scopes) in wanted.items()
        }
        return {name: future.result() for name, future in made.items()}


@pytest.fixture(scope="module")
def api(server: IssuerServer, keys: dict[str, str]) -> Iterator[httpx.Client]:
    with server.client(keys["a"]) as client:
        yield client


@pytest.fixture(scope="module")
def api_b(server: IssuerServer, keys: dict[str, str]) -> Iterator[httpx.Client]:
    with server.client(keys["b"]) as client:
        yield client


@pytest.fixture(scope="module")
def reader(home: IssuerHome) -> RegistryReader:
    return RegistryReader(home.registry())


# ─── helpers ─────────────────────────────────────────────────────────────────────────────


def person(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "holder": {"name": name, "code": PERSON},
        "validUntil": "2040-12-31",
        "ext": {"address": "杭州市西湖区"},
        **fields,
    }


def confirmed(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """Poll the job until every record is confirmed or failed."""
    return wait_for(lambda: (job := ok(client.get(f"/v1/jobs/{job_id}")))["done"] and job)


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def accepted(response: httpx.Response) -> dict[str, Any]:
    job = ok(response, 202)
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    return job


def problem(response: httpx.Response, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert (body["code"], body["status"], body.get("field")) == (code, status, field), body
    assert body["type"].endswith(code) and body["title"] and body["detail"]
    return body


def issue(client: httpx.Client, *records: dict[str, Any], **headers: str) -> dict[str, Any]:
    """Issue records as a JSON batch and wait until confirmed."""
    job = accepted(
        client.post("/v1/batches", json={"typeCode": TYPE, "records": list(records)}, headers=headers)
    )
    return confirmed(client, job["id"])


def package(client: httpx.Client, identifier: str) -> dict[str, Any]:
    return ok(client.get(f"/v1/certificates/{identifier}/package"))


def verdict(reader: RegistryReader, pkg: dict[str, Any]) -> tuple[Outcome, str | None]:
    report = verify_presentation(Presentation.from_json(pkg), reader)
    return report.verdict, report.reason


def count(server: IssuerServer, sql: str, **params: Any) -> int:
    engine = create_engine(server.database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql), params).scalar_one()
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def certificate(api: httpx.Client) -> str:
    """One confirmed certificate of agency A for read-only tests."""
    return issue(api, person("钱七"))["identifiers"][0]


@pytest.fixture(scope="module")
def certificate_b(api_b: httpx.Client) -> str:
    return issue(api_b, person("孙八"))["identifiers"][0]


# ─── issuing ─────────────────────────────────────────────────────────────────────────────


@both_backends
def test_issue_one_certificate_anchor_and_verify(
    server: IssuerServer, api: httpx.Client, reader: RegistryReader
) -> None:
    job = accepted(api.post("/v1/certificates", json={"typeCode": TYPE, "typeName": "营业执照",
                                                       "record": {"holder": {"name": "杭州示例科技有限公司", "code": COMPANY,
                                                                             "codeType": "001"}, "validUntil": "2045-06-30"}}))  # fmt: skip
    assert (job["total"], job["errors"], len(job["identifiers"])) == (1, [], 1)
    done = confirmed(api, job["id"])
    assert done["counts"] == {
        "pending": 0,
        "sealed": 0,
        "anchored": 0,
        "confirmed": 1,
        "refused": 0,
        "failed": 0,
    }
    assert done["refusals"] == []
    identifier = done["identifiers"][0]
    described = ok(api.get(f"/v1/certificates/{identifier}"))
    assert (described["state"], described["status"], described["version"]) == ("confirmed", "active", 1)
    assert described["batch"]["txHash"].startswith("0x")
    pkg = package(api, identifier)
    fields = Presentation.from_json(pkg).fields()
    assert (fields["identifier"], fields["name"], fields["holder"]["code"]) == (
        identifier,
        "营业执照",
        COMPANY,
    )
    assert verdict(reader, pkg) == (Outcome.VALID, None)


@both_backends
def test_batch_as_json_jsonl_and_csv_reports_bad_records_and_issues_the_rest(
    server: IssuerServer, api: httpx.Client, reader: RegistryReader
) -> None:
    as_json = accepted(api.post("/v1/batches", json={"typeCode": TYPE, "records": [
        person("周一"), {"holder": {"name": "吴二", "code": PERSON_BAD_CHECK}}, person("郑三", validUntil="2030/01/01"), person("王四"),
    ]}))  # fmt: skip
    assert as_json["total"] == 4 and len(as_json["identifiers"]) == 2
    assert [(e["position"], e["code"], e["field"]) for e in as_json["errors"]] == [
        (2, "ID_CHECK_CHAR", "holder.code"), (3, "FIELD_INVALID", "validUntil"),
    ]  # fmt: skip
    jsonl = "\n".join(json.dumps(person(name), ensure_ascii=False) for name in ("冯五", "陈六")) + "\n"
    as_jsonl = accepted(api.post("/v1/batches", data={"typeCode": TYPE},
                                 files={"file": ("records.jsonl", jsonl.encode(), "application/x-ndjson")}))  # fmt: skip
    csv = ("holder.name,holder.code,validUntil,ext.address\n"
           f"褚七,{PERSON},2040-01-01,\"杭州市西湖区, 文三路\"\n卫八,{PERSON},,杭州市上城区\n蒋九,{PERSON_BAD_CHECK},,杭州市\n")  # fmt: skip
    as_csv = accepted(api.post("/v1/batches", data={"typeCode": TYPE, "typeName": "测试证照"},
                               files={"file": ("records.csv", csv.encode("utf-8-sig"), "text/csv")}))  # fmt: skip
    assert [(e["position"], e["code"], e["field"]) for e in as_csv["errors"]] == [
        (3, "ID_CHECK_CHAR", "holder.code")
    ]
    for job, issued in ((as_json, 2), (as_jsonl, 2), (as_csv, 2)):
        done = confirmed(api, job["id"])
        assert (done["counts"]["confirmed"], done["counts"]["failed"]) == (issued, job["total"] - issued)
        assert verdict(reader, package(api, done["identifiers"][-1])) == (Outcome.VALID, None)
    fields = Presentation.from_json(package(api, as_csv["identifiers"][0])).fields()
    assert (fields["name"], fields["ext"]["address"], fields["validUntil"]) == (
        "测试证照",
        "杭州市西湖区, 文三路",
        "2040-01-01",
    )


def test_a_name_that_contradicts_the_type_is_refused(api: httpx.Client) -> None:
    """Issue 10, point 13: a business licence named 机动车驾驶证 could pass as one with its type hidden."""
    contradicting = {"typeCode": TYPE, "typeName": "机动车驾驶证", "records": [person("周甲")]}
    problem(api.post("/v1/batches", json=contradicting), 422, "FIELD_INVALID", "typeName")
    job = accepted(
        api.post(
            "/v1/batches",
            json={"typeCode": TYPE, "records": [{**person("周乙"), "name": "机动车驾驶证"}, person("周丙")]},
        )
    )
    assert [(e["position"], e["code"], e["field"]) for e in job["errors"]] == [(1, "FIELD_INVALID", "name")]
    assert len(job["identifiers"]) == 1


@both_backends
def test_idempotency_key_returns_the_same_job_and_never_duplicates(
    server: IssuerServer, api: httpx.Client
) -> None:
    body = {"typeCode": TYPE, "records": [person("沈甲"), person("韩乙")]}
    first = accepted(api.post("/v1/batches", json=body, headers={"Idempotency-Key": "batch-0001"}))
    again = accepted(api.post("/v1/batches", json=body, headers={"Idempotency-Key": "batch-0001"}))
    assert (again["id"], again["identifiers"]) == (first["id"], first["identifiers"])
    assert count(server, "SELECT count(*) FROM certificates WHERE job_id = :job", job=first["id"]) == 2
    conflict = problem(api.post("/v1/batches", json={**body, "records": [person("沈甲")]}, headers={"Idempotency-Key": "batch-0001"}),
                       409, "IDEMPOTENCY_CONFLICT")  # fmt: skip
    assert "Idempotency-Key" in conflict["detail"]

    # retries racing each other (a client timing out and sending again) still make one job
    body = {"typeCode": TYPE, "record": person("杨丙")}
    barrier = threading.Barrier(4)

    def send(_: int) -> str:
        with httpx.Client(base_url=server.url, headers=dict(api.headers)) as client:
            barrier.wait()
            return accepted(
                client.post("/v1/certificates", json=body, headers={"Idempotency-Key": "cert-0001"})
            )["id"]

    with ThreadPoolExecutor(4) as pool:
        ids = set(pool.map(send, range(4)))
    assert len(ids) == 1
    assert count(server, "SELECT count(*) FROM jobs WHERE idempotency_key = 'cert-0001'") == 1
    assert count(server, "SELECT count(*) FROM certificates WHERE job_id = :job", job=ids.pop()) == 1
    assert confirmed(api, first["id"])["counts"]["confirmed"] == 2


# ─── who may do what ─────────────────────────────────────────────────────────────────────


def test_another_agencys_certificate_and_job_are_forbidden(
    api: httpx.Client, api_b: httpx.Client, certificate: str, certificate_b: str
) -> None:
    for method, path, body in [
        ("GET", "", None), ("GET", "/package", None), ("GET", "/qr.png", None), ("GET", "/print", None),
        ("POST", "/status", {"status": "suspended", "reason": 2}), ("POST", "/renewals", {"changes": {}}),
        ("POST", "/claim-code", None),
    ]:  # fmt: skip
        problem(
            api.request(method, f"/v1/certificates/{certificate_b}{path}", json=body), 403, "AGENCY_FORBIDDEN"
        )
    problem(api_b.get(f"/v1/certificates/{certificate}"), 403, "AGENCY_FORBIDDEN")
    job_b = accepted(api_b.post("/v1/certificates", json={"typeCode": TYPE, "record": person("李丁")}))
    problem(api.get(f"/v1/jobs/{job_b['id']}"), 403, "AGENCY_FORBIDDEN")
    assert ok(api_b.get(f"/v1/jobs/{job_b['id']}"))["id"] == job_b["id"]
    problem(api.get("/v1/jobs/" + "0" * 32), 404, "JOB_NOT_FOUND")
    unknown = build_licence_id(TYPE, AGENCY_A, "9999999", 1)
    problem(api.get(f"/v1/certificates/{unknown}"), 404, "CERT_NOT_FOUND")
    wrong_check = str(unknown)[:-1] + ("A" if unknown.check != "A" else "B")
    problem(api.get(f"/v1/certificates/{wrong_check}"), 422, "ID_CHECK_CHAR", "identifier")


def test_keys_scopes_and_revocation(server: IssuerServer, keys: dict[str, str], certificate: str) -> None:
    issue_body = {"typeCode": TYPE, "record": person("朱戊")}
    with server.client() as anonymous:
        body = problem(anonymous.post("/v1/certificates", json=issue_body), 401, "AUTH_REQUIRED")
        assert (
            anonymous.get(f"/v1/certificates/{certificate}").headers["www-authenticate"].startswith("Bearer")
        )
        assert body["instance"] == "/v1/certificates"
        problem(
            anonymous.get(f"/v1/certificates/{certificate}", headers={"Authorization": "Bearer ek_nope"}),
            401,
            "AUTH_INVALID",
        )
        assert (
            ok(anonymous.get(f"/v1/certificates/{certificate}", headers={"X-API-Key": keys["a_issue"]}))[
                "identifier"
            ]
            == certificate
        )
    with server.client(keys["a_status"]) as status_only:
        assert (
            problem(status_only.post("/v1/certificates", json=issue_body), 403, "SCOPE_MISSING")["scope"]
            == "issue"
        )
        problem(status_only.post(f"/v1/certificates/{certificate}/claim-code"), 403, "SCOPE_MISSING")
        assert (
            ok(status_only.get(f"/v1/certificates/{certificate}"))["identifier"] == certificate
        )  # reading needs no scope
    with server.client(keys["a_issue"]) as issue_only:
        problem(
            issue_only.post(
                f"/v1/certificates/{certificate}/status", json={"status": "suspended", "reason": 2}
            ),
            403,
            "SCOPE_MISSING",
        )
    listed = json.loads(
        server.home.ecert("issuer", "api-key", "list", "--agency", AGENCY_A, "--json", env=server.env).stdout
    )
    doomed = next(k for k in listed if k["label"] == "a_doomed")
    assert (
        doomed["scopes"] == ["issue"]
        and doomed["revokedAt"] is None
        and all("ek_" not in json.dumps(k) for k in listed)
    )
    with server.client(keys["a_doomed"]) as client:
        ok(client.get(f"/v1/certificates/{certificate}"))
        server.home.ecert("issuer", "api-key", "revoke", str(doomed["id"]), env=server.env)
        problem(client.get(f"/v1/certificates/{certificate}"), 401, "AUTH_INVALID")
    stranger = server.home.ecert(
        "issuer", "api-key", "create", "--agency", COMPANY, "--scopes", "issue", env=server.env, check=False
    )
    assert stranger.returncode == 2 and "AGENCY_UNKNOWN" in stranger.stderr and "ek_" not in stranger.stdout


# ─── malformed requests: a 4xx problem naming the field, never a 500 ─────────────────────

CSV_HEADER = "holder.name,holder.code\n"
MALFORMED = [
    # (id, path, request kwargs, status, code, field)
    ("bad-json", "/v1/certificates", {"content": b'{"typeCode": ', "headers": {"content-type": "application/json"}}, 400, "JSON_INVALID", "body"),
    ("bad-json-batch", "/v1/batches", {"content": b"[1,", "headers": {"content-type": "application/json"}}, 400, "JSON_INVALID", "body"),
    ("empty-body", "/v1/batches", {"content": b"", "headers": {"content-type": "application/json"}}, 400, "JSON_INVALID", "body"),
    ("no-record", "/v1/certificates", {"json": {"typeCode": TYPE}}, 422, "REQUEST_INVALID", "record"),
    ("record-not-object", "/v1/certificates", {"json": {"typeCode": TYPE, "record": [1]}}, 422, "REQUEST_INVALID", "record"),
    ("unknown-key", "/v1/certificates", {"json": {"typeCode": TYPE, "record": {}, "colour": "red"}}, 422, "REQUEST_INVALID", "colour"),
    ("records-not-list", "/v1/batches", {"json": {"typeCode": TYPE, "records": {"a": 1}}}, 422, "REQUEST_INVALID", "records"),
    ("record-in-batch-not-object", "/v1/batches", {"json": {"typeCode": TYPE, "records": [person("x"), "y"]}}, 422, "REQUEST_INVALID", "records[1]"),
    ("empty-batch", "/v1/batches", {"json": {"typeCode": TYPE, "records": []}}, 422, "BATCH_EMPTY", "records"),
    ("type-short", "/v1/certificates", {"json": {"typeCode": "1110000000001333", "record": person("x")}}, 422, "TYPE_CODE_INVALID", "typeCode"),
    ("type-bad-uscc", "/v1/batches", {"json": {"typeCode": "11100000000013338X001", "records": [person("x")]}}, 422, "TYPE_CODE_INVALID", "typeCode"),
    ("type-not-granted", "/v1/certificates", {"json": {"typeCode": NOT_GRANTED, "record": person("x")}}, 422, "TYPE_NOT_GRANTED", "typeCode"),
    ("date-format", "/v1/certificates", {"json": {"typeCode": TYPE, "record": person("x", validUntil="2030/01/01")}}, 422, "FIELD_INVALID", "validUntil"),
    ("id-check-char", "/v1/certificates", {"json": {"typeCode": TYPE, "record": {"holder": {"name": "x", "code": PERSON_BAD_CHECK}}}}, 422, "ID_CHECK_CHAR", "holder.code"),
    ("no-holder", "/v1/certificates", {"json": {"typeCode": TYPE, "record": {"validUntil": "2040-01-01"}}}, 422, "FIELD_MISSING", "holder"),
    ("unknown-field", "/v1/certificates", {"json": {"typeCode": TYPE, "record": person("x", colour="red")}}, 422, "FIELD_UNKNOWN", "colour"),
    ("csv-unclosed-quote", "/v1/batches", {"data": {"typeCode": TYPE}, "files": {"file": ("r.csv", f'{CSV_HEADER}"x,{PERSON}\n'.encode())}}, 422, "CSV_MALFORMED", "file"),
    ("csv-extra-values", "/v1/batches", {"data": {"typeCode": TYPE}, "files": {"file": ("r.csv", f"{CSV_HEADER}x,{PERSON},extra\n".encode())}}, 422, "CSV_MALFORMED", "file"),
    ("csv-no-header-name", "/v1/batches", {"data": {"typeCode": TYPE}, "files": {"file": ("r.csv", f"holder.name,\nx,{PERSON}\n".encode())}}, 422, "CSV_MALFORMED", "file"),
    ("csv-not-utf8", "/v1/batches", {"data": {"typeCode": TYPE}, "files": {"file": ("r.csv", CSV_HEADER.encode() + "张三".encode("gbk") + b",1\n")}}, 422, "UPLOAD_ENCODING", "file"),
    ("csv-header-only", "/v1/batches", {"data": {"typeCode": TYPE}, "files": {"file": ("r.csv", CSV_HEADER.encode())}}, 422, "BATCH_EMPTY", "file"),
    ("jsonl-bad-line", "/v1/batches", {"data": {"typeCode": TYPE}, "files": {"file": ("r.jsonl", json.dumps(person("x")).encode() + b"\n{oops\n")}}, 422, "RECORD_MALFORMED", "file"),
    ("jsonl-not-object", "/v1/batches", {"data": {"typeCode": TYPE}, "files": {"file": ("r.jsonl", b"[1, 2]\n")}}, 422, "RECORD_MALFORMED", "file"),
    ("upload-empty", "/v1/batches", {"data": {"typeCode": TYPE}, "files": {"file": ("r.jsonl", b"")}}, 422, "BATCH_EMPTY", "file"),
    ("upload-no-type", "/v1/batches", {"files": {"file": ("r.csv", f"{CSV_HEADER}x,{PERSON}\n".encode())}}, 422, "FIELD_MISSING", "typeCode"),
    ("upload-no-file", "/v1/batches", {"data": {"typeCode": TYPE}, "files": {"other": ("r.csv", b"x")}}, 422, "FIELD_MISSING", "file"),
    ("upload-bad-type", "/v1/batches", {"data": {"typeCode": "nonsense"}, "files": {"file": ("r.csv", f"{CSV_HEADER}x,{PERSON}\n".encode())}}, 422, "TYPE_CODE_INVALID", "typeCode"),
    ("plain-text", "/v1/batches", {"content": b"hello", "headers": {"content-type": "text/plain"}}, 415, "MEDIA_TYPE_UNSUPPORTED", "Content-Type"),
    ("idempotency-key-too-long", "/v1/certificates", {"json": {"typeCode": TYPE, "record": person("x")}, "headers": {"Idempotency-Key": "k" * 201}}, 400, "IDEMPOTENCY_KEY_INVALID", "Idempotency-Key"),
    ("nan", "/v1/certificates", {"content": b'{"typeCode": "' + TYPE.encode() + b'", "record": {"holder": {"name": "x", "code": "' + PERSON.encode() + b'"}, "ext": {"n": NaN}}}', "headers": {"content-type": "application/json"}}, 400, "CERT_MALFORMED", None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "code", "field"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_request_is_a_problem_naming_the_field(
    api: httpx.Client, path: str, kwargs: dict[str, Any], status: int, code: str, field: str | None
) -> None:
    problem(api.post(path, **kwargs), status, code, field)


def test_bad_status_requests_and_unknown_routes(api: httpx.Client, certificate: str) -> None:
    url = f"/v1/certificates/{certificate}/status"
    problem(api.post(url, json={"status": "paused", "reason": 2}), 422, "REQUEST_INVALID", "status")
    problem(api.post(url, json={"status": "suspended"}), 422, "REQUEST_INVALID", "reason")
    problem(api.post(url, json={"status": "revoked", "reason": 2}), 422, "REASON_INVALID", "reason")
    problem(
        api.post(f"/v1/certificates/{certificate}/renewals", json={"changes": {"validUntil": "31.12.2050"}}),
        422,
        "FIELD_INVALID",
        "validUntil",
    )
    problem(api.get("/v1/nothing-here"), 404, "NOT_FOUND")
    problem(api.delete(f"/v1/certificates/{certificate}"), 405, "METHOD_NOT_ALLOWED")


# ─── lifecycle: status, renewal, claim ───────────────────────────────────────────────────


def test_suspend_then_reinstate_then_revoke(api: httpx.Client, reader: RegistryReader) -> None:
    identifier = issue(api, person("秦庚"))["identifiers"][0]
    pkg = package(api, identifier)
    url = f"/v1/certificates/{identifier}/status"
    changed = ok(api.post(url, json={"status": "suspended", "reason": 2, "note": "暂扣 pending review"}))
    assert (changed["status"], changed["reason"]) == ("suspended", 2) and changed["txHash"].startswith("0x")
    assert verdict(reader, pkg) == (Outcome.INVALID, "CERT_SUSPENDED")
    assert ok(api.get(f"/v1/certificates/{identifier}"))["status"] == "suspended"
    ok(api.post(url, json={"status": "active", "reason": 1}))
    assert verdict(reader, pkg) == (Outcome.VALID, None)
    ok(api.post(url, json={"status": "revoked", "reason": 7}))
    assert verdict(reader, pkg) == (Outcome.INVALID, "CERT_REVOKED")
    problem(api.post(url, json={"status": "active", "reason": 1}), 409, "CERT_REVOKED")


def test_a_key_s_direct_status_change_and_the_key_itself_are_in_the_agency_s_audit_log(
    server: IssuerServer, api: httpx.Client, keys: dict[str, str]
) -> None:
    """API keys stay for systems and change status without a second person, but never unrecorded:
    each change is logged under `api-key:<id>`, and each key made with the CLI under `cli:<user>`."""
    identifier = issue(api, person("褚癸"))["identifiers"][0]
    ok(
        api.post(
            f"/v1/certificates/{identifier}/status", json={"status": "suspended", "reason": 2, "note": "待核"}
        )
    )
    engine = create_engine(server.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT actor, details FROM audit_log WHERE action = 'status_change' AND subject = :s"),
                {"s": identifier},
            ).all()
            made = connection.execute(
                text(
                    "SELECT actor, subject, details FROM audit_log WHERE action = 'key_change' AND agency = :a"
                ),
                {"a": AGENCY_A},
            ).all()
    finally:
        engine.dispose()
    assert len(rows) == 1 and re.fullmatch(r"api-key:\d+", rows[0].actor), rows
    assert json.loads(rows[0].details) | {"txHash": None} == {
        "status": "suspended", "reason": 2, "direct": True, "txHash": None
    }  # fmt: skip
    created = [json.loads(r.details) for r in made if r.actor.startswith("cli:")]
    assert {"event": "created", "scopes": ["issue", "status"]} in created, made
    assert all(re.fullmatch(r"api-key:\d+", r.subject) for r in made)


def test_renewal_makes_version_002_and_revokes_the_old_one(api: httpx.Client, reader: RegistryReader) -> None:
    old = issue(api, person("尤辛", validUntil="2030-12-31"))["identifiers"][0]
    old_pkg = package(api, old)
    job = accepted(
        api.post(f"/v1/certificates/{old}/renewals", json={"changes": {"validUntil": "2035-12-31"}})
    )
    new = confirmed(api, job["id"])["identifiers"][0]
    assert new.split(".")[-2] == "002" and new.split(".")[-3] == old.split(".")[-3]
    described = ok(api.get(f"/v1/certificates/{new}"))
    assert (described["version"], described["previousIdentifier"]) == (2, old)
    fields = Presentation.from_json(package(api, new)).fields()
    assert (fields["previousIdentifier"], fields["validUntil"], fields["holder"]["name"]) == (
        old,
        "2035-12-31",
        "尤辛",
    )
    assert verdict(reader, package(api, new)) == (Outcome.VALID, None)
    retired = wait_for(
        lambda: (d := ok(api.get(f"/v1/certificates/{old}")))["status"] == "revoked" and d, timeout_s=30
    )
    assert (retired["statusReason"], retired["supersededBy"]) == (4, new)
    assert verdict(reader, old_pkg) == (Outcome.INVALID, "CERT_REVOKED")
    problem(api.post(f"/v1/certificates/{old}/renewals", json={"changes": {}}), 409, "CERT_SUPERSEDED")


def test_a_retried_renewal_with_the_same_idempotency_key_returns_the_same_job(api: httpx.Client) -> None:
    old = issue(api, person("许壬"))["identifiers"][0]
    body, headers = {"changes": {"validUntil": "2036-12-31"}}, {"Idempotency-Key": "renewal-0001"}
    first = accepted(api.post(f"/v1/certificates/{old}/renewals", json=body, headers=headers))
    assert (
        accepted(api.post(f"/v1/certificates/{old}/renewals", json=body, headers=headers))["id"]
        == first["id"]
    )


def test_claim_code_works_once_and_only_for_its_holder(
    server: IssuerServer, api: httpx.Client, certificate: str
) -> None:
    claim = ok(api.post(f"/v1/certificates/{certificate}/claim-code"), 201)
    assert len(claim["code"]) == 14 and claim["expiresAt"]
    holder = Presentation.from_json(package(api, certificate)).fields()["holder"]["code"]
    someone_else = "11010519491231002X" if holder != "11010519491231002X" else "110105194912310037"
    with server.client() as wallet:  # the holder: no API key
        problem(
            wallet.post("/v1/claims", json={"code": claim["code"], "holderCode": someone_else}),
            403,
            "CLAIM_NOT_YOURS",
        )
        assert ok(wallet.post("/v1/claims", json={"code": claim["code"], "holderCode": holder})) == package(
            api, certificate
        )
        problem(wallet.post("/v1/claims", json={"code": claim["code"]}), 404, "CLAIM_INVALID")
        problem(wallet.post("/v1/claims", json={"code": "AAAA-BBBB-CCCC"}), 404, "CLAIM_INVALID")


def test_claim_codes_never_travel_in_a_url_nor_reach_a_log_and_guesses_are_rate_limited(
    server: IssuerServer, api: httpx.Client, certificate: str
) -> None:
    holder = Presentation.from_json(package(api, certificate)).fields()["holder"]["code"]
    redeemed = []
    with server.client() as wallet:
        for _ in range(12):  # redemptions do not count: a wallet claims for all its holders from one address
            redeemed.append(ok(api.post(f"/v1/certificates/{certificate}/claim-code"), 201)["code"])
            assert ok(wallet.post("/v1/claims", json={"code": redeemed[-1], "holderCode": holder}))["leaves"]
        assert wallet.post("/v1/claims/ZZZZ-ZZZZ-ZZZZ", json={}).status_code in (
            404,
            405,
        )  # no route takes a code in its path
        answers = [wallet.post("/v1/claims", json={"code": f"AAAA-BBBB-{n:04d}"}) for n in range(30)]
        statuses = [a.status_code for a in answers]
        assert set(statuses) == {404, 429} and statuses.index(429) <= 10, (
            statuses
        )  # a burst of at most 10 failures, then 429
        limited = answers[statuses.index(429)]
        assert limited.json()["code"] == "RATE_LIMITED" and int(limited.headers["Retry-After"]) >= 1
    log = server.log_path.read_text(encoding="utf-8", errors="replace")
    assert "POST /v1/claims" in log and not [code for code in redeemed if code in log]


# ─── renderings and docs ─────────────────────────────────────────────────────────────────


def test_qr_codes_are_verification_links_carrying_the_packages_ec1(
    api: httpx.Client, certificate: str, reader: RegistryReader
) -> None:
    presentation = Presentation.from_json(package(api, certificate))
    png = api.get(f"/v1/certificates/{certificate}/qr.png")
    assert png.headers["content-type"] == "image/png" and png.headers["cache-control"] == "no-store"
    [link] = decode_qr(png.content)
    assert link.startswith(("http://", "https://")) and "/v#EC1:" in link  # at ECERT_ISSUER_VERIFIER_URL
    assert read_scanned(link).ec1 == presentation.to_ec1()
    svg = api.get(f"/v1/certificates/{certificate}/qr.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content
    shown = "name,identifier,holder.name,holder.codeMasked,validFrom,validUntil,issuer.name"
    [link] = decode_qr(api.get(f"/v1/certificates/{certificate}/qr.png", params={"fields": shown}).content)
    disclosed = Presentation.from_ec1(read_scanned(link).ec1 or "")
    assert "holder.code" not in disclosed.paths() and verdict(reader, disclosed.to_json()) == (
        Outcome.VALID,
        None,
    )
    problem(
        api.get(f"/v1/certificates/{certificate}/qr.png", params={"fields": "nope"}),
        422,
        "FIELD_UNKNOWN",
        "nope",
    )


@pytest.mark.skipif(not HAS_PRINTING, reason="issuer/printing.py is not there yet")
def test_print_html_and_pdf(api: httpx.Client, certificate: str) -> None:
    page = api.get(f"/v1/certificates/{certificate}/print")
    assert page.headers["content-type"].startswith("text/html")
    assert certificate in page.text and "钱七" in page.text and PERSON not in page.text
    assert "Holder" in api.get(f"/v1/certificates/{certificate}/print", params={"lang": "en"}).text
    pdf = api.get(f"/v1/certificates/{certificate}/print.pdf")
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")


@pytest.mark.skipif(not HAS_PRINTING, reason="issuer/printing.py is not there yet")
def test_the_printed_licence_s_qr_code_scans_at_100_dpi_and_verifies(
    api: httpx.Client, certificate: str, reader: RegistryReader, tmp_path: Path
) -> None:
    """The A4 PDF rendered at 100 dpi by Ghostscript (a cheap scan or fax), read by zbar: the link
    it holds carries a disclosure the verifier's pipeline finds VALID on the chain."""
    gs = shutil.which("gs")
    assert gs, "Ghostscript is not installed: run scripts/install.sh"
    (tmp_path / "licence.pdf").write_bytes(api.get(f"/v1/certificates/{certificate}/print.pdf").content)
    subprocess.run(
        [gs, "-q", "-dSAFER", "-dNOPAUSE", "-dBATCH", "-sDEVICE=pnggray", "-r100",
         f"-sOutputFile={tmp_path / 'licence.png'}", str(tmp_path / "licence.pdf")],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    [link] = decode_qr(tmp_path / "licence.png")
    printed = Presentation.from_ec1(read_scanned(link).ec1 or "")
    assert "holder.code" not in printed.paths() and printed.fields()["holder"]["name"] == "钱七"
    assert verdict(reader, printed.to_json()) == (Outcome.VALID, None)


def test_docs_and_openapi(server: IssuerServer) -> None:
    with server.client() as client:
        docs = client.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        spec = ok(client.get("/openapi.json"))
    assert spec["info"]["title"] == "ecert issuer"
    for path in ("/v1/certificates", "/v1/batches", "/v1/jobs/{job_id}", "/v1/certificates/{identifier}/status",
                 "/v1/certificates/{identifier}/renewals", "/v1/claims"):  # fmt: skip
        assert path in spec["paths"]
    assert set(spec["paths"]["/v1/batches"]["post"]["requestBody"]["content"]) == {
        "application/json",
        "multipart/form-data",
    }
    assert {"HTTPBearer", "APIKeyHeader"} <= set(spec["components"]["securitySchemes"])


# ─── last: the server stops cleanly and never answered 500 ───────────────────────────────


@both_backends
def test_server_stops_on_sigterm_and_never_answered_500(server: IssuerServer) -> None:
    assert server.stop() == 0, server.log()
    log = server.log()
    assert '" 500 ' not in log and "Traceback" not in log and "unhandled error" not in log, log
