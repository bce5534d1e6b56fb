"""`/metrics` of every service over real HTTP, read with prometheus_client's own parser: the
verifier with two worker processes (the counts of both, whichever answers the scrape), the
issuer and the wallet as `ecert serve` runs them, on a real anvil chain; then the chain stopped
(`ecert chain down`): every scrape still answers, the chain unreachable."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from service_process import ServiceProcess, wait_for
from verifier_stack import AGENCY_ZJ, AUTHORITIES, BUSINESS_LICENCE, Issued, StackHome, VerifierNode, records

from registry.chain.runner import free_port

pytestmark = pytest.mark.chain

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]
REQUESTS = "ecert_http_requests_total"
HOLDERS = records(2)


@dataclass
class Stack:
    home: StackHome
    node: VerifierNode  # two workers
    issuer: ServiceProcess
    wallet: ServiceProcess
    issued: Issued
    bank: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = StackHome(tmp_path_factory.mktemp("metrics"))
    node = VerifierNode(home, "330000", workers=2)
    bank, wallet_key = node.register(("某某银行杭州分行", "330100", "bank"), ("浙里办", "330000", "wallet"))
    issuer_port, wallet_port = free_port(), free_port()
    issuer = ServiceProcess("the issuer", ["serve", "issuer", "--port", str(issuer_port)], home.env,
                            home.root / "issuer.log", issuer_port)  # fmt: skip
    wallet_env = {**home.env, "ECERT_WALLET_ISSUER_URL": issuer.url, "ECERT_WALLET_VERIFIER_URL": node.url,
                  "ECERT_WALLET_VERIFIER_KEY": wallet_key}  # fmt: skip
    wallet = ServiceProcess("the wallet", ["serve", "wallet", "--port", str(wallet_port)], wallet_env,
                            home.root / "wallet.log", wallet_port)  # fmt: skip
    try:
        home.deploy()
        node.launch()
        home.add_parties(authorities=AUTHORITIES[:1])
        issued = home.issue(AGENCY_ZJ, BUSINESS_LICENCE, HOLDERS, "zj")
        issuer.launch()
        wallet.launch()
        for service in (node, issuer, wallet):
            service.wait_healthy()
        node.wait_indexed()
        yield Stack(home, node, issuer, wallet, issued, bank)
    finally:
        for service in (wallet, issuer, node):
            service.stop()
        home.tear_down()


def scrape(url: str) -> tuple[str, Samples]:
    """One scrape on a connection of its own (a worker of a node takes each anew): text and samples."""
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


def requests_of(samples: Samples, method: str, route: str, status: str) -> float:
    return value(samples, REQUESTS, method=method, route=route, status=status)


def gauge(samples: Samples, name: str) -> float | None:
    return samples.get(name, {}).get(())


def test_the_verifier_counts_every_verification_whichever_of_its_two_workers_answers(stack: Stack) -> None:
    _, before = scrape(stack.node.url)
    valid_before = value(before, "ecert_verifier_verifications_total", verdict="VALID", channel="api")
    posts_before = requests_of(before, "POST", "/v1/verifications", "2xx")
    made = 30
    package = stack.issued.package(0)
    with (
        stack.node.client(stack.bank) as client,
        ThreadPoolExecutor(4) as pool,
    ):  # concurrent: both workers answer
        answers = list(
            pool.map(lambda n: client.post("/v1/verifications", json={"purpose": f"核验{n}", "package": package}), range(made))
        )  # fmt: skip
    assert all(a.status_code == 200 and a.json()["verdict"] == "VALID" for a in answers)
    # a verification is counted before it is answered; a request once answered: wait for the last ones
    wait_for(
        lambda: requests_of(scrape(stack.node.url)[1], "POST", "/v1/verifications", "2xx") == posts_before + made,
        10, what=f"for {made} more POST /v1/verifications",
    )  # fmt: skip
    for _ in range(8):  # on fresh connections: both workers answer scrapes, each with both workers' counts
        text, samples = scrape(stack.node.url)
        assert (
            value(samples, "ecert_verifier_verifications_total", verdict="VALID", channel="api")
            == valid_before + made
        )
        assert requests_of(samples, "POST", "/v1/verifications", "2xx") == posts_before + made
        assert (
            HOLDERS[0]["holder"]["name"] not in text and stack.issued.identifier(0) not in text
        )  # no personal data
    writers = list((stack.home.root / ".ecert" / "verifier-330000" / "metrics").glob("counter_*.db"))
    assert len(writers) == 2, writers  # one file per worker: both counted some of them
    assert gauge(samples, "ecert_chain_reachable") == 1
    head, indexed = gauge(samples, "ecert_chain_head_block"), gauge(samples, "ecert_verifier_indexed_block")
    assert head is not None and indexed is not None and 0 < indexed <= head
    assert gauge(samples, "ecert_verifier_index_lag_blocks") == head - indexed
    histogram = samples["ecert_http_request_duration_seconds_count"]
    assert (
        histogram[(("method", "POST"), ("route", "/v1/verifications"), ("status", "2xx"))]
        == posts_before + made
    )


def test_the_issuer_counts_requests_by_route_template_and_reads_its_queue(stack: Stack) -> None:
    _, before = scrape(stack.issuer.url)
    job = "job-" + secrets.token_hex(8)  # an id in a path is no label
    with httpx.Client(base_url=stack.issuer.url, timeout=10) as client:
        for _ in range(5):
            assert client.get("/healthz").status_code == 200
        for _ in range(3):
            assert client.get(f"/v1/jobs/{job}").status_code == 401
    wait_for(
        lambda: requests_of(scrape(stack.issuer.url)[1], "GET", "/v1/jobs/{job_id}", "4xx")
        == requests_of(before, "GET", "/v1/jobs/{job_id}", "4xx") + 3,
        10, what="for 3 more GET /v1/jobs/{job_id}",
    )  # fmt: skip
    text, samples = scrape(stack.issuer.url)
    assert requests_of(samples, "GET", "/healthz", "2xx") == requests_of(before, "GET", "/healthz", "2xx") + 5
    assert job not in text
    assert gauge(samples, "ecert_issuer_anchoring_queue_certificates") == 0  # `ecert issue` anchored them all
    assert gauge(samples, "ecert_issuer_anchoring_lag_seconds") == 0
    assert gauge(samples, "ecert_chain_reachable") == 1
    assert (gauge(samples, "ecert_chain_head_block") or 0) >= stack.home.head() - 1


def test_the_wallet_counts_its_pages(stack: Stack) -> None:
    _, before = scrape(stack.wallet.url)
    with httpx.Client(base_url=stack.wallet.url, timeout=10) as client:
        for _ in range(4):
            assert client.get("/login").status_code == 200
        assert client.get("/no-such-page-SECRET").status_code == 404
    wanted = requests_of(before, "GET", "/login", "2xx") + 4
    samples = wait_for(
        lambda: (s := scrape(stack.wallet.url)[1]) and requests_of(s, "GET", "/login", "2xx") == wanted and s,
        10, what="for 4 more GET /login",
    )  # fmt: skip
    assert requests_of(samples, "GET", "<unmatched>", "4xx") >= 1
    assert not any("SECRET" in str(labels) for labels in samples[REQUESTS])


def test_with_the_chain_down_every_scrape_answers_the_chain_unreachable(stack: Stack) -> None:
    stack.home.chain_down()
    try:
        for service in (stack.node, stack.issuer):
            started = time.monotonic()

            def unreachable(url: str = service.url) -> bool:
                samples = scrape(url)[1]
                return (
                    gauge(samples, "ecert_chain_reachable") == 0 and "ecert_chain_head_block" not in samples
                )

            # every worker must have noticed (its head tracker's reading goes stale within 3 s)
            wait_for(lambda: all(unreachable() for _ in range(4)), 20,
                     what=f"{service.name} to say the chain is unreachable")  # fmt: skip
            assert time.monotonic() - started < 20
        for _ in range(4):  # whichever worker of the node answers
            started = time.monotonic()
            samples = scrape(stack.node.url)[1]
            assert time.monotonic() - started < 5
            assert gauge(samples, "ecert_chain_reachable") == 0
            assert gauge(samples, "ecert_verifier_indexed_block")  # the index is still read
            assert "ecert_verifier_index_lag_blocks" not in samples  # unknown without the head
    finally:
        stack.home.chain_up()
