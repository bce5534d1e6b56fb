"""Prometheus metrics at `/metrics`, shared by the issuer, the verifier and the wallet: request
counts and latencies by method, route template (never the raw path: tokens and ids in paths are
no label) and status class; the chain's reachability read at scrape time; and the installer of the
route (`ECERT_METRICS_ENABLED`, `ECERT_METRICS_TOKEN`). Each service adds its own metrics.

A service served by several worker processes (`ecert serve verifier --workers N`) counts in
prometheus_client's multiprocess mode: its node process makes a private folder
(`multiprocess_folder`) and names it in `PROMETHEUS_MULTIPROC_DIR` before the workers start, each
worker writes its counts there, and whichever answers a scrape adds up every worker's."""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.error_codes import ErrorCode
from registry.problems import problem
from registry.secrets_files import private_folder
from registry.settings import Settings, get_settings

__all__ = [
    "MULTIPROC_ENV",
    "ChainProbe",
    "RequestMetrics",
    "chain_gauges",
    "install_metrics",
    "multiprocess",
    "multiprocess_folder",
]

log = logging.getLogger(__name__)
PATH = "/metrics"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))  # any other: "other"
UNMATCHED = "<unmatched>"  # a path no route matched: its raw path is no label (any client may send any)
# A verification takes about a millisecond; a batch submission or a page may take seconds
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CHAIN_PROBE_TIMEOUT_S = 2.0


def multiprocess() -> bool:
    """Whether this process counts in multiprocess mode: prometheus_client chose it at import,
    from `PROMETHEUS_MULTIPROC_DIR` (a worker process started with it set)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False)) and bool(os.environ.get(MULTIPROC_ENV))


def multiprocess_folder(path: Path) -> Path:
    """`path` made a private (0700) folder and emptied of an earlier run's counts: for the worker
    processes a node is about to start (name it in `PROMETHEUS_MULTIPROC_DIR` before they do)."""
    private_folder(path)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    return path


class RequestMetrics:
    """ASGI middleware: count every HTTP request and time it, by method, route template (the
    matched route's path, `/v1/certificates/{identifier}`; one of the `direct` paths, answered
    before routing like the verifier's `DirectRoute`, by that path; else `<unmatched>`) and status
    class.
    The metrics' children are cached per (method, route, status class): a request costs two
    dict lookups and the two observations."""

    def __init__(
        self, app: ASGIApp, *, requests: Counter, latency: Histogram, direct: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self._requests = requests
        self._latency = latency
        self._direct = direct
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # an exception that escapes is answered 500 by the server-error layer outside

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, watch)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) if route is not None else None
            method = scope["method"]
            key = (
                method if method in METHODS else "other",
                template or self._direct_path(scope),
                status // 100,
            )
            children = self._children.get(key)
            if children is None:
                children = self._child(key)
            children[0].inc()
            children[1].observe(elapsed)

    def _child(self, key: tuple[str, str, int]) -> tuple[Counter, Histogram]:
        method, route, status_class = key
        status = f"{status_class}xx"
        children = (self._requests.labels(method, route, status), self._latency.labels(method, route, status))
        self._children[key] = children
        return children

    def _direct_path(self, scope: Scope) -> str:
        """The request's path if it is one of the `direct` routes, else `<unmatched>`."""
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        return path if path in self._direct else UNMATCHED


class ChainProbe:
    """The chain's head block for a scrape, read by `read_head` in a helper thread and waited for
    at most `timeout_s`: a node that hangs makes the scrape say unreachable, never hang. A read
    still running from an earlier scrape is waited on again, not repeated."""

    def __init__(self, read_head: Callable[[], int], *, timeout_s: float = CHAIN_PROBE_TIMEOUT_S) -> None:
        self._read_head = read_head
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._running: _Read | None = None

    def head(self) -> int | None:
        """The head block, or None when the chain did not answer in time (or answered an error)."""
        with self._lock:
            read = self._running
            if read is None:
                read = self._running = _Read(self._read_head)
        if not read.done.wait(self._timeout_s):
            return None
        with self._lock:
            if self._running is read:
                self._running = None
        return read.value


class _Read:
    def __init__(self, read_head: Callable[[], int]) -> None:
        self.value: int | None = None
        self.done = threading.Event()
        threading.Thread(target=self._run, args=(read_head,), name="metrics-chain", daemon=True).start()

    def _run(self, read_head: Callable[[], int]) -> None:
        try:
            self.value = int(read_head())
        except Exception as exc:  # whatever the chain client raises, the chain is not reachable
            log.debug("metrics: chain head unreadable (%s)", exc.__class__.__name__)
        finally:
            self.done.set()


def chain_gauges(head: int | None) -> Iterator[Metric]:
    """`ecert_chain_reachable` (1 or 0) and, when reachable, `ecert_chain_head_block`."""
    yield GaugeMetricFamily(
        "ecert_chain_reachable",
        "1 if the chain's head could be read at this scrape, else 0",
        value=1.0 if head is not None else 0.0,
    )
    if head is not None:
        yield GaugeMetricFamily("ecert_chain_head_block", "The chain's head block at this scrape", value=head)


class _Guarded:
    """A scrape-time collector whose failure (a database away) leaves its metrics out of the
    scrape, logged, instead of answering 500."""

    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        try:
            return list(self._collect())
        except Exception:
            log.warning("metrics: a scrape-time collector failed; its metrics are left out", exc_info=True)
            return []


def install_metrics(
    app: FastAPI,
    settings: Settings | None = None,
    *,
    metrics: Iterable[Collector] = (),
    at_scrape: Iterable[Callable[[], Iterable[Metric]]] = (),
    direct: Iterable[str] = (),
) -> None:
    """Count `app`'s requests and serve `GET /metrics` (out of the OpenAPI schema), unless
    `ECERT_METRICS_ENABLED` (of `settings`, by default the process's) is false; with `ECERT_METRICS_TOKEN`, only to `Authorization: Bearer
    <token>`. `metrics` are the service's own (made with `registry=None`), `at_scrape` functions
    yield gauges computed at each scrape, `direct` are the paths of routes answered before routing
    (they set no route in the request's scope). Call it last in the app factory: its middleware is then
    the outermost, timing the others too."""
    settings = settings or get_settings()
    if not settings.metrics_enabled:
        return
    exposed = CollectorRegistry(auto_describe=False)
    requests = Counter(
        "ecert_http_requests",
        "HTTP requests answered, by method, route template and status class",
        ["method", "route", "status"],
        registry=None,
    )
    latency = Histogram(
        "ecert_http_request_duration_seconds",
        "Time to answer an HTTP request, by method, route template and status class",
        ["method", "route", "status"],
        buckets=LATENCY_BUCKETS,
        registry=None,
    )
    if multiprocess():  # every worker's counts, from the files they write
        MultiProcessCollector(exposed, os.environ[MULTIPROC_ENV])  # type: ignore[no-untyped-call]
    else:
        for metric in (requests, latency, *metrics):
            exposed.register(metric)
    for collect in at_scrape:
        exposed.register(_Guarded(collect))
    app.add_middleware(RequestMetrics, requests=requests, latency=latency, direct=frozenset(direct))
    token = settings.metrics_token.get_secret_value().encode() if settings.metrics_token else None

    @app.get(PATH, include_in_schema=False)
    def scrape(request: Request) -> Response:
        if token is not None:
            given = request.headers.get("authorization", "")
            scheme, _, credentials = given.partition(" ")
            if not given:
                return problem(request, ErrorCode.AUTH_REQUIRED, "Send Authorization: Bearer <metrics token>")
            if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode(), token):
                return problem(request, ErrorCode.AUTH_INVALID, "Not the metrics token")
        return Response(
            generate_latest(exposed), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"}
        )
