"""The verifier node's HTTP API (OpenAPI docs at /docs)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.telemetry import TelemetryConfig

from registry.docs import install_docs
from registry.metrics import install_metrics
from registry.problems import install as install_problems
from registry.text_guard import RefuseBrokenText
from verifier.api import (
    desk,
    history,
    holdings,
    pages,
    receipts,
    remote_access,
    scan,
    shares,
    stats,
    status,
    subscriptions,
    verifications,
)
from verifier.api.openapi import declare_security
from verifier.api.privacy import PrivateHeaders
from verifier.api.schemas import HealthOut
from verifier.metrics import VERIFICATIONS, node_gauges
from verifier.runtime import VerifierRuntime

# py_ecc (imported by eth_account) raises the recursion limit to 100,000, deeper than the C stack
# can go: one request body of 200,000 '[' then crashed the node (SIGSEGV in json.loads) before its
# API key was even read. With this limit deep JSON raises RecursionError, answered 400.
MAX_RECURSION = 5_000
# FastAPI's native OpenTelemetry asks the global providers on every request whether to trace it;
# the node configures none, and that question cost more than routing the request.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(runtime: VerifierRuntime, *, owns_runtime: bool = False) -> FastAPI:
    """The API over `runtime`; with `owns_runtime` (a worker process) the app closes it at shutdown,
    so the worker's last access-log entries are sent."""
    if sys.getrecursionlimit() > MAX_RECURSION:
        sys.setrecursionlimit(MAX_RECURSION)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_runtime:
            await run_in_threadpool(runtime.close)  # joins threads: not on the event loop

    app = FastAPI(
        lifespan=lifespan,
        telemetry=NO_TELEMETRY,
        title=f"ecert verifier — region {runtime.settings.region}",
        description="Verify electronic certificates (电子证照): package, EC1 QR payload, QR photo or share link. "
        "Valid and invalid answer 200 with the report and a signed receipt; 'could not verify' answers 503.",
        version="1",
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app)  # /docs and /redoc from installed assets: no CDN
    app.state.runtime = runtime
    install_problems(app)
    for module in (
        verifications,
        history,
        shares,
        holdings,
        remote_access,
        receipts,
        status,
        pages,
        scan,
        desk,
        subscriptions,
        stats,  # aggregated counts for agencies' dashboards (issue 12)
    ):
        app.include_router(module.router)
    declare_security(app)
    # The hot route answers first, past the text guard (its strict parser refuses what the guard
    # would: one ASGI layer less on every verification) and past the private headers (it sets its own)
    app.router.middleware_stack = verifications.DirectRoute(
        RefuseBrokenText(PrivateHeaders(app.router.middleware_stack))
    )

    @app.get(
        "/healthz", tags=["node"], summary="Health: chain reachable, index fresh", response_model=None,
        openapi_extra={"security": []},
        responses={200: {"model": HealthOut, "description": "Healthy"},
                   503: {"description": "Unhealthy: the chain is unreachable or the index stalled (`problems` says which)",
                         "model": HealthOut}},
    )  # fmt: skip
    def health(response: Response) -> dict[str, Any]:
        healthy, facts = runtime.health()
        response.status_code = 200 if healthy else 503
        response.headers["Cache-Control"] = "no-store"
        return facts

    install_metrics(app, metrics=[VERIFICATIONS], at_scrape=[node_gauges(runtime)],
                    direct=[verifications.PATH])  # fmt: skip
    return app
