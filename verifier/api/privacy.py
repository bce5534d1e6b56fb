"""Headers for the node's answers that may carry personal data (reports with disclosed fields,
share pages, shares, access logs): never stored by a cache, never framed, never leaking the share
link (its token, its dynamic code) in a Referer.

The hot path, `POST /v1/verifications`, appends the precomputed `PRIVATE_JSON` list to its
response's raw headers (one `list.extend`, about 0.1 µs); every other route goes through
`PrivateHeaders`, a plain ASGI wrapper (no Starlette middleware), except the API docs and their
assets, which may be cached and need their scripts."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# the share page has one inline <style> block and one style attribute, nothing else
PAGE_CSP = b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_COMMON = [
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]
PRIVATE_JSON: list[tuple[bytes, bytes]] = [*_COMMON, (b"content-security-policy", JSON_CSP)]
PRIVATE_PAGE: list[tuple[bytes, bytes]] = [*_COMMON, (b"content-security-policy", PAGE_CSP)]
PUBLIC_PREFIXES = ("/docs", "/redoc", "/openapi.json")  # the API docs (registry.docs) and their assets


class PrivateHeaders:
    """ASGI: adds `PRIVATE_PAGE` (share pages, `/s/…`) or `PRIVATE_JSON` to every HTTP answer but
    the docs', keeping any of those headers a route set itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        extra = PRIVATE_PAGE if path.startswith("/s/") else PRIVATE_JSON

        async def send_private(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in extra if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_private)
