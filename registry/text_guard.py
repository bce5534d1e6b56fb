"""Refuse, before any route runs, a JSON or form body holding text that is not Unicode: bytes
that are not UTF-8, or a lone UTF-16 surrogate (`"\\ud800"` is valid JSON, and `%ED%A0%80` a
valid percent-escape, yet neither is a character). Python reads both into a `str` that fails
later, wherever it is encoded (a database driver, a log, a JSON answer): a 500 far from the
cause. One ASGI middleware answers 400 `TEXT_INVALID` instead, for every service.

So does a NUL character (`"\\u0000"`, `%00`) in a body, the query string or the path: it is
Unicode, but PostgreSQL stores no text holding it, so it was a 500 on every route that looks a
text up (a holderRef, a share id), and, in an anonymous link visitor's typed purpose, an
access-log entry whose batch the database refused on every flush: the node's whole log held
back behind it.

Cost: the body is read once more as bytes (`bytes.decode` at about 1 GB/s); JSON is parsed a
second time only when it holds a `\\u` escape, which our own clients never send.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.requests import Request

from registry.error_codes import ErrorCode
from registry.problems import problem

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON, FORM = "json", "form"


def _kind(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            if media == b"application/json" or media.endswith(b"+json"):
                return JSON
            if media == b"application/x-www-form-urlencoded":
                return FORM
            return None
    return None


def is_broken(body: bytes, kind: str) -> bool:
    """Whether `body` (JSON or a urlencoded form) holds text that is not Unicode."""
    raw = unquote_to_bytes(body.replace(b"+", b" ")) if kind == FORM else body
    try:
        text = raw.decode("utf-8")  # strict: also refuses UTF-8-encoded surrogates
    except UnicodeDecodeError:
        return True
    if kind == JSON and "\\u" in text:
        try:
            parsed = json.loads(text)
        except ValueError:
            return False  # not JSON at all: the route says so
        try:
            json.dumps(parsed, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return True
    return False


def holds_nul(body: bytes, kind: str) -> bool:
    """Whether `body` (JSON or a urlencoded form) holds a NUL character (which no column stores)."""
    if kind == FORM:
        return b"%00" in body or b"\x00" in body
    if b"\\u0000" not in body:
        return False
    try:
        return _has_nul(json.loads(body))
    except (ValueError, RecursionError):
        return False  # not JSON (or not UTF-8): the route, or `is_broken`, says so


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _nul_in_target(scope: Scope) -> bool:
    """A NUL in the path (decoded) or, percent-escaped, in the query string."""
    return "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b"")


class RefuseBrokenText:
    """ASGI middleware. A route whose own parser is strict already (the verifier's hot route,
    orjson) is answered before it, not through it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _nul_in_target(scope):
            detail = "The path or query holds a NUL character: no text here may hold one"
            await problem(Request(scope), ErrorCode.TEXT_INVALID, detail)(scope, receive, send)
            return
        kind = _kind(scope) if scope["type"] == "http" else None
        if kind is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        message: Message = {"more_body": True}
        while message.get("more_body", False):
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
        body = b"".join(chunks)
        if is_broken(body, kind) or holds_nul(body, kind):
            detail = "The body holds text that is not valid Unicode (bytes that are not UTF-8, or a lone surrogate) or a NUL character: send UTF-8 text without NUL"
            await problem(Request(scope), ErrorCode.TEXT_INVALID, detail)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
