"""Fetch a share held by another region's node (跨省通办): only from hosts in this node's
trusted list, with this node's key, and then verify it here against the same on-chain registry."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx

from registry.certificate.presentation import Presentation
from registry.error_codes import ErrorCode
from registry.errors import CertificateError, ChainUnavailable, NotAuthorised, NotFound


def share_token(url: str) -> tuple[str, str]:
    """(base URL, token) of a share link `<base>/s/<token>`."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if "/s/" not in path or parts.scheme not in ("http", "https"):
        raise CertificateError(
            "Not a share link: expected <node>/s/<token>", code=ErrorCode.SHARE_URL_INVALID, field="shareUrl"
        )
    prefix, token = path.rsplit("/s/", 1)
    return f"{parts.scheme}://{parts.netloc}{prefix}", token


def dynamic_code(url: str) -> str | None:
    """The `c` of a dynamic share's link (the code of its current 30-second window), if any."""
    codes = parse_qs(urlsplit(url).query).get("c")
    return codes[0] if codes else None


@dataclass(frozen=True)
class RemoteShare:
    """A share fetched from the node that keeps it: its disclosure, that node, and the share as
    that node knows it (the SHA-256 of its token, never the token): where the verification's
    access-log entry is owed (`verifier.outbox`)."""

    presentation: Presentation
    origin: str  # the node's base URL, as in this node's trusted list
    token_hash: str  # hex SHA-256 of the token


def fetch_shared_presentation(url: str, trusted: list[str], node_key: str | None, **_: object) -> RemoteShare:
    base, token = share_token(url)
    if base.rstrip("/") not in {t.rstrip("/") for t in trusted}:
        raise NotAuthorised(
            f"{base} is not a trusted verifier node of this one",
            code=ErrorCode.NODE_UNTRUSTED,
            field="shareUrl",
        )
    code = dynamic_code(url)
    try:
        answer = httpx.get(
            f"{base}/v1/shares/{token}/presentation", params={"c": code} if code else None,
            headers={"Authorization": f"Bearer {node_key or ''}"}, timeout=5.0,
        )  # fmt: skip
    except httpx.HTTPError as exc:
        raise ChainUnavailable(
            f"The node {base} did not answer: try again later", code=ErrorCode.NODE_UNAVAILABLE
        ) from exc
    if answer.status_code == 404:
        raise NotFound(
            "The share does not exist, has expired or was withdrawn",
            code=ErrorCode.of(answer.json().get("code"), ErrorCode.SHARE_NOT_FOUND),
        )
    if answer.status_code != 200:
        raise ChainUnavailable(
            f"The node {base} answered {answer.status_code}", code=ErrorCode.NODE_UNAVAILABLE
        )
    return RemoteShare(
        Presentation.from_json(answer.json()), base.rstrip("/"), hashlib.sha256(token.encode()).hexdigest()
    )
