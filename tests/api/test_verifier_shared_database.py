"""Two verifier node processes on one database, as an operator scales a node out: one indexes
(the database's indexer lease), the other serves and stands by; killing the indexing process
hands the index to the other within seconds, and /healthz says 503 when the chain is away."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from databases import postgres_database
from service_process import wait_for
from verifier_stack import AGENCY_ZJ, BUSINESS_LICENCE, PERSON, StackHome, VerifierNode

pytestmark = pytest.mark.chain


def _health(node: VerifierNode) -> tuple[int, dict]:
    answer = httpx.get(f"{node.url}/healthz", timeout=5)
    return answer.status_code, answer.json()


@pytest.fixture(params=["sqlite", "postgresql"])
def nodes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[StackHome, list[VerifierNode]]]:
    home = StackHome(tmp_path)
    with ExitStack() as stack:
        stack.callback(home.tear_down)
        home.set_up()
        settings = {}
        if request.param == "postgresql":
            admin = os.environ.get("ECERT_TEST_POSTGRES_URL")
            if not admin:
                pytest.skip("ECERT_TEST_POSTGRES_URL is not set (scripts/test.sh sets it)")
            settings["database_url"] = stack.enter_context(postgres_database(admin))
        started = []
        for _ in range(2):
            node = VerifierNode(home, "330000", **settings)
            stack.callback(node.stop)
            started.append(node.start())
        yield home, started


def test_one_process_indexes_healthz_tells_the_chain_is_away_and_another_takes_over(
    nodes: tuple[StackHome, list[VerifierNode]],
) -> None:
    home, pair = nodes
    roles = wait_for(lambda: sorted(r) if sorted(r := [_health(n)[1]["indexer"] for n in pair]) == ["standby", "this process"] else None,
                     timeout_s=30, what="one indexer and one standby")  # fmt: skip
    assert roles == ["standby", "this process"] and all(_health(n)[0] == 200 for n in pair)

    home.chain_down()
    try:
        for node in pair:
            status, facts = wait_for(
                lambda n=node: (h := _health(n))[0] == 503 and h, timeout_s=15, what="healthz to say 503"
            )
            assert (
                facts["status"] == "unhealthy"
                and "CHAIN_UNAVAILABLE" in facts["problems"]
                and facts["headBlock"] is None
            )
    finally:
        home.chain_up()
    wait_for(lambda: all(_health(n)[0] == 200 for n in pair), timeout_s=30, what="healthz to recover")

    leader = next(n for n in pair if _health(n)[1]["indexer"] == "this process")
    survivor = next(n for n in pair if n is not leader)
    assert leader.process is not None
    leader.process.kill()  # SIGKILL: no clean shutdown, the lease must still pass on
    leader.process.wait(10)
    issued = home.issue(
        AGENCY_ZJ, BUSINESS_LICENCE, [{"holder": {"name": "接管", "code": PERSON}}], "after-takeover"
    )
    head = home.head()
    wait_for(
        lambda: _health(survivor)[1]["indexer"] == "this process",
        timeout_s=30,
        what="the survivor to take the lease",
    )
    survivor.wait_indexed(head)
    status, facts = _health(survivor)
    assert status == 200 and facts["status"] == "ok" and facts["lagBlocks"] <= 2, facts
    bank = survivor.add_org("接管测试银行", "330000")
    with survivor.client(bank) as client:
        answer = client.post("/v1/verifications", json={"package": issued.package(0), "purpose": "takeover"})
    assert (answer.status_code, answer.json()["verdict"]) == (200, "VALID"), answer.text[:400]
