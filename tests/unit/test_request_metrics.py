"""registry.metrics in-process: request counts by route template (never the raw path), a route
answered before routing (the verifier's `DirectRoute`) by its path, unmatched paths under one
label, 5xx of an unhandled error, the token and the switch of `/metrics`, and a chain that hangs
or fails never hanging a scrape."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from registry.chain.runner import free_port
from registry.metrics import ChainProbe, chain_gauges, install_metrics, multiprocess_folder
from registry.settings import Settings

REQUESTS = "ecert_http_requests"


class Direct:
    """Like the verifier's `DirectRoute`: answers one path before the router sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/direct":
            await PlainTextResponse("direct")(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def make_app(settings: Settings, *gauges: Metric) -> FastAPI:
    app = FastAPI()
    router = APIRouter(prefix="/items")  # as every service's routes are: its prefix is in the template

    @router.get("/{secret_id}")
    def item(secret_id: str) -> dict[str, str]:
        return {"id": secret_id}

    app.include_router(router)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/direct")
    def direct() -> str:  # documented here, answered by `Direct`
        return "router"

    app.router.middleware_stack = Direct(app.router.middleware_stack)
    install_metrics(app, settings, at_scrape=[lambda: list(gauges)], direct=["/direct"])
    return app


@contextmanager
def served(app: FastAPI) -> Iterator[httpx.Client]:
    """`app` on uvicorn in a thread (real HTTP); a client of it."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(5)


def scrape(client: httpx.Client, **headers: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def count(
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]], route: str, status: str = "2xx"
) -> float:
    key = (("method", "GET"), ("route", route), ("status", status))
    return samples.get(f"{REQUESTS}_total", {}).get(key, 0.0)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with served(make_app(Settings())) as http:
        yield http


def test_routes_are_counted_by_template_never_by_raw_path(client: httpx.Client) -> None:
    for i in range(3):
        assert client.get(f"/items/tok-{i}-SECRET").status_code == 200
    assert client.get("/no/such/SECRET-path").status_code == 404
    assert client.get("/direct").text == "direct"
    # a method beyond the usual ones is no label either (uvicorn refuses a made-up one itself)
    assert client.request("PROPFIND", "/items/x").status_code == 405
    # uvicorn closes the connection of an unhandled error: a connection of its own
    assert httpx.get(f"{client.base_url}/boom", timeout=10).status_code == 500
    response = client.get("/metrics")
    assert "SECRET" not in response.text
    samples = scrape(client)
    assert count(samples, "/items/{secret_id}") == 3
    assert count(samples, "<unmatched>", "4xx") == 1
    assert count(samples, "/direct") == 1
    other = (("method", "other"), ("route", "/items/{secret_id}"), ("status", "4xx"))
    assert samples[f"{REQUESTS}_total"][other] == 1
    assert count(samples, "/boom", "5xx") == 1
    # a request is counted once answered: the scrape just before may land a moment after this one
    assert count(samples, "/metrics") in (1, 2)
    histogram = samples["ecert_http_request_duration_seconds_count"]
    assert histogram[(("method", "GET"), ("route", "/items/{secret_id}"), ("status", "2xx"))] == 3


def test_metrics_is_not_in_the_openapi_schema(client: httpx.Client) -> None:
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_the_token_guards_metrics() -> None:
    settings = Settings(metrics_token=SecretStr("s3cret-token"))
    with served(make_app(settings)) as client:
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["code"] == "AUTH_INVALID"
        assert wrong.headers["www-authenticate"].startswith("Bearer")
        assert count(scrape(client, Authorization="Bearer s3cret-token"), "/metrics", "4xx") == 2


def test_metrics_can_be_turned_off() -> None:
    with served(make_app(Settings(metrics_enabled=False))) as client:
        assert client.get("/metrics").status_code == 404


def test_scrape_time_gauges_and_a_chain_that_is_down() -> None:
    gauges = list(chain_gauges(None))
    with served(make_app(Settings(), *gauges)) as client:
        samples = scrape(client)
    assert samples["ecert_chain_reachable"] == {(): 0.0}
    assert "ecert_chain_head_block" not in samples
    up = {m.name: m.samples[0].value for m in chain_gauges(42)}
    assert up == {"ecert_chain_reachable": 1.0, "ecert_chain_head_block": 42.0}


def test_a_failing_scrape_time_collector_is_left_out() -> None:
    def broken() -> list[Metric]:
        raise RuntimeError("database away")

    app = make_app(Settings())
    install_metrics(app, Settings(), at_scrape=[broken])  # a second /metrics: the first route answers
    with served(app) as client:
        assert client.get("/metrics").status_code == 200


def test_a_hanging_chain_never_hangs_the_probe() -> None:
    release = threading.Event()
    calls = []

    def hangs() -> int:
        calls.append(1)
        release.wait(10)
        return 7

    probe = ChainProbe(hangs, timeout_s=0.2)
    started = time.monotonic()
    assert probe.head() is None and probe.head() is None
    assert time.monotonic() - started < 2
    assert len(calls) == 1  # the second scrape waits on the read still running, no second thread
    release.set()
    assert probe.head() == 7

    def fails() -> int:
        raise ConnectionError("refused")

    assert ChainProbe(fails).head() is None


def test_the_multiprocess_folder_is_private_and_emptied(tmp_path: Path) -> None:
    folder = tmp_path / "node" / "metrics"
    folder.mkdir(parents=True, mode=0o755)
    (folder / "counter_123.db").write_bytes(b"old")
    assert multiprocess_folder(folder) == folder
    assert folder.stat().st_mode & 0o777 == 0o700
    assert not list(folder.iterdir())
