"""The services' core scenario on each database they support, SQLite and PostgreSQL (issue 14,
point 7): the whole stack of tests/e2e/stack.py (a chain; `ecert serve issuer`, `verifier` and
`wallet`, each in its own process) once with every service on its default SQLite file and once
with each on a throwaway PostgreSQL database of its own. Over real HTTP, no browser: the issuer
issues and revokes, the verifier node verifies (a package, then a holder's share), the wallet
claims, shares, shows the status and the access log. Every test first checks that the rows are
in the database under test, so a service that ignored its database URL cannot pass."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from databases import postgres_database
from service_process import wait_for
from sqlalchemy import create_engine, func, select, table
from stack import BANK_ORG, Stack, csrf_of, http_holder

pytestmark = pytest.mark.chain

SERVICES = ("issuer", "verifier", "wallet")


class DatabaseStack(Stack):
    """The e2e stack with its three services' databases on one engine."""

    def __init__(self, root: Path, backend: str) -> None:
        super().__init__(root)
        self.backend = backend

    def database_url(self, service: str) -> str:
        if url := self.env.get(f"ECERT_{service.upper()}_DATABASE_URL"):
            return url
        folder = {"issuer": "issuer", "verifier": "verifier-330000", "wallet": "wallet"}[service]
        return f"sqlite:///{self.home / folder / f'{service}.sqlite'}"

    def count(self, service: str, name: str) -> int:
        engine = create_engine(
            self.database_url(service).replace("postgresql://", "postgresql+psycopg://", 1)
        )
        try:
            with engine.connect() as connection:
                return int(connection.execute(select(func.count()).select_from(table(name))).scalar_one())
        finally:
            engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabaseStack]:
    made = DatabaseStack(tmp_path_factory.mktemp(f"stack-{request.param}"), request.param)
    with ExitStack() as cleanup:
        if request.param == "postgresql":
            admin = os.environ.get("ECERT_TEST_POSTGRES_URL")
            if not admin:
                pytest.skip("ECERT_TEST_POSTGRES_URL is not set (scripts/test.sh sets it)")
            for service in SERVICES:
                url = cleanup.enter_context(postgres_database(admin))
                made.env[f"ECERT_{service.upper()}_DATABASE_URL"] = url
        cleanup.callback(made.stop)  # before the databases are dropped
        made.start(holders=4)
        yield made


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text[:500]}"
    return response.json()


def verify(stack: Stack, package: dict[str, Any]) -> tuple[str, str | None]:
    """The bank's verification of `package` at the node: its verdict and reason."""
    with httpx.Client(
        base_url=stack.verifier.url, headers={"Authorization": f"Bearer {stack.bank_key}"}, timeout=30
    ) as bank:
        answer = bank.post("/v1/verifications", json={"package": package, "purpose": "开户核验"})
    assert answer.status_code in (200, 503), answer.text[:500]
    body = answer.json()
    return body["verdict"], body["reason"]


def test_the_services_keep_their_rows_in_the_database_under_test(stack: DatabaseStack) -> None:
    scheme = "postgresql" if stack.backend == "postgresql" else "sqlite"
    assert all(stack.database_url(s).startswith(scheme) for s in SERVICES)
    assert stack.count("issuer", "certificates") == 4  # issued through the issuer API at start
    assert stack.count("verifier", "organisations") == 2  # the wallet and the bank
    assert stack.count("verifier", "idx_state") == 1  # the node's index of the chain
    assert stack.count("wallet", "wallet_holders") >= 0  # the wallet's tables are there: migrated at start


def test_issue_verify_then_revoke_and_the_node_says_revoked(stack: DatabaseStack) -> None:
    person, logged = stack.person(), stack.count("verifier", "access_log")
    with stack.issuer_client() as api:
        described = ok(api.get(f"/v1/certificates/{person.identifier}"))
        assert described["state"] == "confirmed"
        package = ok(api.get(f"/v1/certificates/{person.identifier}/package"))
        assert verify(stack, package) == ("VALID", None)

        changed = ok(
            api.post(f"/v1/certificates/{person.identifier}/status", json={"status": "revoked", "reason": 3})
        )
        assert changed["status"] == "revoked"
        assert ok(api.get(f"/v1/certificates/{person.identifier}"))["status"] == "revoked"
        refused = api.post(
            f"/v1/certificates/{person.identifier}/status", json={"status": "active", "reason": 1}
        )
        assert (refused.status_code, refused.json()["code"]) == (409, "CERT_REVOKED")

    def revoked() -> tuple[str, str | None] | None:
        answer = verify(stack, package)  # from the chain, or from the index once it has the block
        return answer if answer[0] != "VALID" else None

    assert wait_for(revoked, timeout_s=30, what="the node to see the revocation") == (
        "INVALID",
        "CERT_REVOKED",
    )
    assert stack.count("verifier", "access_log") >= logged + 2  # the bank's verifications, logged


def test_the_wallet_claims_shares_logs_and_shows_a_revocation(stack: DatabaseStack) -> None:
    person = stack.person()
    holder = http_holder(stack, person)  # registered and claimed: the issuer redeemed the code
    card = holder.card_id  # type: ignore[attr-defined]
    try:
        assert stack.count("wallet", "wallet_certificates") >= 1
        listed = ok(holder.get("/api/v1/certificates"))
        assert [(c["id"], c["status"]["verdict"]) for c in listed] == [(card, "VALID")]

        token = csrf_of(holder.get(f"/certificates/{card}/share").text)
        made = ok(holder.post(f"/api/v1/certificates/{card}/shares", headers={"X-CSRF-Token": token},
                              json={"fields": ["holder.name"], "purpose": "开户", "expiresInMinutes": 60}), 201)  # fmt: skip
        assert made["state"] == "active" and made["url"]
        assert stack.count("verifier", "shares") >= 1  # the share lives at the node
        opened = httpx.get(made["url"], timeout=30,
                           headers={"Authorization": f"Bearer {stack.bank_key}", "Accept": "application/json"})  # fmt: skip
        assert opened.status_code == 200 and opened.json()["verdict"] == "VALID", opened.text[:500]
        log = ok(holder.get("/api/v1/access-log"))
        assert [(e["organisation"], e["verdict"]) for e in log if e["organisation"] == BANK_ORG] == [
            (BANK_ORG, "VALID")
        ]

        with stack.issuer_client() as api:
            ok(
                api.post(
                    f"/v1/certificates/{person.identifier}/status", json={"status": "revoked", "reason": 7}
                )
            )
        shown = wait_for(
            lambda: (
                (s := ok(holder.get(f"/api/v1/certificates/{card}"))["status"])["verdict"] == "INVALID" and s
            ),
            timeout_s=30,
            what="the wallet to show the revocation",
        )
        assert shown["reason"] == "CERT_REVOKED"
    finally:
        holder.close()
