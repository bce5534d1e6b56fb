"""Correction requests over real HTTP (`POST /v1/corrections`, `GET /v1/corrections/{id}`):
`ecert serve issuer` in a subprocess with its anchoring worker on a real anvil chain; the
certificates issued through the API, their packages as the API gives them. The agency's answer
is given by the same issuer's runtime opened in this process on the same database (what the
console calls), and the holder then fetches the renewed package over HTTP."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from issuer_server import AGENCY_A, TYPE, IssuerHome, IssuerServer, issuer_home, issuer_server
from pydantic import SecretStr
from service_process import ECERT, wait_for

from issuer.runtime import IssuerRuntime
from issuer.staff import staff_accounts
from registry.certificate.presentation import Presentation
from registry.settings import Settings
from registry.workspace import Workspace

pytestmark = pytest.mark.chain

PROBLEM = "application/problem+json"
HOLDER = "11010519491231002X"  # valid 公民身份号码
OTHER = "110101199003070012"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IssuerHome]:
    with issuer_home(tmp_path_factory.mktemp("issuer-corrections")) as made:
        yield made


@pytest.fixture(scope="module")
def server(home: IssuerHome) -> Iterator[IssuerServer]:
    with issuer_server(home, "corrections") as running:
        yield running


@pytest.fixture(scope="module")
def api(server: IssuerServer) -> Iterator[httpx.Client]:
    with server.client(server.api_key(AGENCY_A, "issue,status")) as client:
        yield client


@pytest.fixture(scope="module")
def packages(api: httpx.Client) -> dict[str, dict[str, Any]]:
    records = [{"holder": {"name": f"王{n}", "code": HOLDER}, "validUntil": "2040-12-31",
                "ext": {"address": f"杭州市西湖区{n}号"}} for n in range(4)]  # fmt: skip
    job = api.post("/v1/batches", json={"typeCode": TYPE, "records": records}).json()
    done = wait_for(lambda: (j := api.get(f"/v1/jobs/{job['id']}").json())["done"] and j)
    return {i: api.get(f"/v1/certificates/{i}/package").json() for i in done["identifiers"]}


@pytest.fixture(scope="module")
def runtime(home: IssuerHome, server: IssuerServer) -> Iterator[IssuerRuntime]:
    """The issuer's runtime in this process, on the served database (the console's side)."""
    settings = Settings(home=home.root / ".ecert", rpc_url=home.rpc_url, keystore_scrypt_n=1024,
                        keystore_password=SecretStr(home.env["ECERT_KEYSTORE_PASSWORD"]))  # fmt: skip
    opened = IssuerRuntime.open(Workspace(settings))
    yield opened
    opened.close()


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status, body
    return body


def _ask(client: httpx.Client, package: dict[str, Any], **fields: Any) -> httpx.Response:
    body = {"package": package, "holderCode": HOLDER, "kind": "field", "field": "holder.name",
            "message": "姓名写错了", **fields}  # fmt: skip
    return client.post("/v1/corrections", json=body)


def test_a_holder_asks_and_reads_the_request_with_its_token(
    server: IssuerServer, packages: dict[str, Any]
) -> None:
    identifier, package = next(iter(packages.items()))
    with server.client() as public:  # no API key: the package and the holder code are the proof
        made = public.post("/v1/corrections", json={"package": package, "holderCode": HOLDER.lower(), "kind": "field",
                                                    "field": "ext.address", "message": "门牌号错了"},
                           headers={"Idempotency-Key": "wallet-1"})  # fmt: skip
        assert made.status_code == 201, made.text
        body = made.json()
        assert set(body) == {"id", "token", "identifier", "kind", "field", "status", "createdAt", "dueAt"}
        assert (body["identifier"], body["kind"], body["field"], body["status"]) == (
            identifier, "field", "ext.address", "open")  # fmt: skip
        assert body["createdAt"].endswith("Z") and body["dueAt"] > body["createdAt"]
        assert made.headers["cache-control"] == "no-store"
        again = public.post("/v1/corrections", json={"package": package, "holderCode": HOLDER, "kind": "field",
                                                     "field": "ext.address", "message": "门牌号错了"},
                            headers={"Idempotency-Key": "wallet-1"})  # fmt: skip
        assert again.status_code == 200 and again.json() == body
        read = public.get(f"/v1/corrections/{body['id']}", headers={"X-Correction-Token": body["token"]})
        assert read.status_code == 200, read.text
        assert read.json() == {
            "id": body["id"], "identifier": identifier, "kind": "field", "field": "ext.address",
            "message": "门牌号错了", "status": "open", "createdAt": body["createdAt"], "dueAt": body["dueAt"],
            "answeredAt": None, "reason": None, "newIdentifier": None, "package": None, "packagePending": False,
        }  # fmt: skip
        for headers in ({"X-Correction-Token": "x" * 32}, {}):
            _problem(
                public.get(f"/v1/corrections/{body['id']}", headers=headers), 404, "CORRECTION_NOT_FOUND"
            )
        _problem(public.get("/v1/corrections/cr_nothing", headers={"X-Correction-Token": body["token"]}), 404,
                 "CORRECTION_NOT_FOUND")  # fmt: skip
        open_twice = _problem(_ask(public, package, field="ext.address", message="还是门牌号"), 409,
                              "CORRECTION_ALREADY_OPEN")  # fmt: skip
        assert open_twice["existingId"] == body["id"]


def test_partial_packages_other_holders_and_bad_bodies_are_refused(
    server: IssuerServer, packages: dict[str, Any]
) -> None:
    package = list(packages.values())[1]
    partial = Presentation.from_json(package).disclose(["holder.name"]).to_json()
    with server.client() as public:
        _problem(_ask(public, partial), 404, "CERT_NOT_FOUND")
        _problem(_ask(public, {**package, "leaves": package["leaves"][1:]}), 404, "CERT_NOT_FOUND")
        _problem(_ask(public, package, holderCode=OTHER), 403, "CORRECTION_NOT_YOURS")
        _problem(_ask(public, package, kind="delete"), 422, "REQUEST_INVALID")
        _problem(_ask(public, package, field="ext.nothing"), 422, "FIELD_UNKNOWN")
        _problem(_ask(public, package, message=""), 422, "REQUEST_INVALID")
        _problem(_ask(public, package, message="字" * 1001), 422, "REQUEST_INVALID")


def test_the_agency_fixes_by_renewal_and_the_holder_gets_the_new_package(
    home: IssuerHome, server: IssuerServer, packages: dict[str, Any], runtime: IssuerRuntime
) -> None:
    old, package = list(packages.items())[2]
    done = subprocess.run([*ECERT, "issuer", "staff", "add", "--agency", AGENCY_A, "--role", "clerk", "--username",
                           "clerk-api", "--name", "张华", "--password-stdin"], env=home.env,
                          input="corrections-pass-1\n", capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    [clerk] = [m for m in staff_accounts(runtime).members(AGENCY_A) if m.username == "clerk-api"]
    with server.client() as public:
        made = _ask(public, package, kind="renewal", field=None, message="请换发新证").json()
        fixed = runtime.corrections.fix(AGENCY_A, made["id"], clerk.id, clerk.username, {"validUntil": "2045-12-31"},
                                        "已换发")  # fmt: skip
        new = fixed.new_identifier
        assert new is not None

        def renewed() -> dict[str, Any] | None:
            answer = public.get(
                f"/v1/corrections/{made['id']}", headers={"X-Correction-Token": made["token"]}
            ).json()
            assert (
                answer["status"] == "fixed"
                and answer["newIdentifier"] == new
                and answer["reason"] == "已换发"
            )
            assert answer["packagePending"] is (answer["package"] is None)
            return answer if answer["package"] else None

        answer = wait_for(renewed)
        values = Presentation.from_json(answer["package"]).values()
        assert values["identifier"] == new and values["previousIdentifier"] == old
        assert values["validUntil"] == "2045-12-31" and new.split(".")[-2] == "002"
        assert answer["answeredAt"].endswith("Z")
        _problem(_ask(public, package, kind="renewal", message="再换一次"), 409, "CERT_SUPERSEDED")


def test_the_contract_is_in_the_openapi(server: IssuerServer) -> None:
    with server.client() as public:
        spec = public.get("/openapi.json").json()
    post = spec["paths"]["/v1/corrections"]["post"]
    assert {"201", "200", "403", "404", "409", "422", "429"} <= set(post["responses"])
    assert "X-Correction-Token" in {
        p["name"] for p in spec["paths"]["/v1/corrections/{request_id}"]["get"]["parameters"]
    }
