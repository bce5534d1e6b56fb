"""The APIs' interactive docs, `/docs` (Swagger UI) and `/redoc` (ReDoc), with their scripts,
styles and icon served by the service itself from an installed package (`fastapi-offline` ships
swagger-ui-dist and redoc's standalone bundle): they work with no internet, and the pages name no
other host (FastAPI's defaults load them from a CDN, ReDoc's fonts from Google)."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs-assets"  # under /docs…: the verifier's private headers leave it alone
ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
# Swagger UI asks validator.swagger.io about the spec unless told not to
SWAGGER_PARAMETERS = {"validatorUrl": None}


def install_docs(app: FastAPI, *, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Serve the docs of `app` (made with `docs_url=None, redoc_url=None`) from `ASSETS`."""
    missing = [name for name in ASSET_FILES if not (ASSETS / name).is_file()]
    if missing:  # a broken install: say so at start, not with a blank docs page
        raise RuntimeError(
            f"API docs assets missing from {ASSETS}: {', '.join(missing)} (reinstall fastapi-offline)"
        )
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    oauth2_redirect_url = f"{docs_url}/oauth2-redirect"

    def urls(request: Request) -> tuple[str, str]:
        root = request.scope.get("root_path", "").rstrip("/")
        return root + (app.openapi_url or "/openapi.json"), root + ASSETS_URL

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        openapi_url, assets = urls(request)
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} — Swagger UI", oauth2_redirect_url=oauth2_redirect_url,
            swagger_js_url=f"{assets}/swagger-ui-bundle.js", swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png", swagger_ui_parameters=SWAGGER_PARAMETERS,
        )  # fmt: skip

    @app.get(oauth2_redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        openapi_url, assets = urls(request)
        return get_redoc_html(
            openapi_url=openapi_url, title=f"{app.title} — ReDoc", redoc_js_url=f"{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{assets}/favicon.png", with_google_fonts=False,
        )  # fmt: skip
