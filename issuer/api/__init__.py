"""The issuer's HTTP API: `create_app(runtime)` → a FastAPI app, one router per resource under
`/v1` (certificates, batches, jobs, claims), API keys per agency and scope, RFC 9457 errors.
OpenAPI at /openapi.json, interactive docs at /docs and /redoc (served offline)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from issuer.api import (
    batches,
    certificates,
    claims,
    console,
    console_certificates,
    console_corrections,
    console_dashboard,
    console_status,
    console_upload,
    corrections,
    jobs,
)
from issuer.api.deps import TypeGrants
from issuer.metrics import issuer_gauges
from issuer.runtime import IssuerRuntime
from registry.docs import install_docs
from registry.metrics import install_metrics
from registry.problems import install as install_problems
from registry.text_guard import RefuseBrokenText

__all__ = ["create_app"]

DESCRIPTION = """
Issue electronic certificates (电子证照) and manage them: every certificate is stored before it is
anchored on chain, so a submission answers **202** with a job to poll.

Authenticate with an agency API key (`ecert issuer api-key create`): `Authorization: Bearer ek_…`
or `X-API-Key: ek_…`. Scopes: `issue`, `status`, `admin` (all). A key acts on its own agency's
certificates and jobs only. Send `Idempotency-Key` to make a submission safe to retry.

Errors are `application/problem+json` (RFC 9457) with a stable `code` and, where one field is
at fault, its `field`.
"""


def create_app(runtime: IssuerRuntime) -> FastAPI:
    app = FastAPI(title="ecert issuer", version="1", description=DESCRIPTION, docs_url=None, redoc_url=None)
    install_docs(app)  # /docs and /redoc from installed assets: no CDN
    app.add_middleware(RefuseBrokenText)  # before the routes: text that is not Unicode is a 400, never a 500
    app.state.runtime = runtime
    app.state.grants = TypeGrants()
    install_problems(app)  # RFC 9457 problem+json, shared by every room's API
    for module in (certificates, batches, jobs, claims, corrections):
        app.include_router(module.router)
    console.install(app)  # /console: agency staff sign in with password and TOTP (issue 12)
    console_status.install(app)  # /console/status: status changes proposed, approved, sent (issue 12.5)
    console_certificates.install(app)  # /console: jobs, search, certificates (masked), the issue form
    console_upload.install(app)  # /console/upload and a job's progress page (issue 12, point 3)
    console_corrections.install(app)  # /console/corrections: holders' correction requests (issue 12, point 9)
    app.include_router(console_dashboard.router)  # /console/dashboard: figures, charts and CSV (issue 12)

    @app.middleware("http")
    async def no_store(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if request.url.path.startswith("/v1/"):  # packages and printouts carry personal data
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # last: its middleware is the outermost, timing the others too
    install_metrics(app, at_scrape=[issuer_gauges(runtime)])
    return app
