"""Shares, for wallets: create, list, withdraw, dynamic codes, and the holder's access log, each
only for the calling wallet and the holder it names (another wallet's or holder's share or log
is 404, as an unknown one); for trusted nodes of other regions: the shared disclosure itself."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from registry.certificate.presentation import Presentation
from registry.error_codes import ErrorCode
from registry.errors import NotFound
from verifier.api.deps import NodeDep, Runtime, WalletDep
from verifier.api.openapi import API_KEY, answers
from verifier.api.schemas import (
    AccessEntryOut,
    DynamicCodeOut,
    ShareCreatedOut,
    SharedPresentationOut,
    ShareOut,
)
from verifier.api.verifications import request_digest
from verifier.remote_log import record_fetch
from verifier.runtime import VerifierRuntime

router = APIRouter(prefix="/v1", tags=["shares"])


class ShareRequest(BaseModel):
    holderRef: str = Field(
        ..., min_length=1, max_length=128, description="The wallet's opaque id of the holder"
    )
    presentation: dict[str, Any] = Field(..., description="The disclosure (chosen fields + multiproof)")
    purpose: str = Field("", max_length=200)
    expiresInMinutes: int = Field(..., ge=5, le=30 * 24 * 60)
    singleUse: bool = False
    dynamic: bool = False
    identifiedOnly: bool = Field(
        False,
        description="Only identified organisations may open it: anonymous visitors get a sign-in prompt",
    )


def _link(rt: VerifierRuntime, share_id_token: str) -> str:
    return f"{rt.settings.public_url.rstrip('/')}/s/{share_id_token}"


@router.post(
    "/shares", status_code=201, summary="Create a share (wallets)", response_model=None, openapi_extra=API_KEY,
    responses={201: {"model": ShareCreatedOut, "description": "The share and its link (the token is shown once)"},
               **answers(400, 401, 403, 422, 429, 503, s403="Only a wallet's key may manage shares (`SCOPE_MISSING`)")},
)  # fmt: skip
def create_share(body: ShareRequest, rt: Runtime, wallet: WalletDep) -> dict[str, Any]:
    presentation = Presentation.from_json(body.presentation)
    request_digest(
        presentation
    )  # refuse now what no node could verify later (integers beyond 2**53, lone surrogates)
    state, token = rt.shares.create(
        wallet.organisation_id, body.holderRef, presentation, purpose=body.purpose, lifetime=dt.timedelta(minutes=body.expiresInMinutes),
        single_use=body.singleUse, dynamic=body.dynamic, identified_only=body.identifiedOnly,
    )  # fmt: skip
    return {**state.to_json(), "token": token, "url": _link(rt, token)}


@router.get(
    "/shares", summary="A holder's shares (wallets)", response_model=None, openapi_extra=API_KEY,
    responses={200: {"model": list[ShareOut], "description": "Newest first"}, **answers(401, 403, 422, 429, 503, s403="Only a wallet's key may manage shares (`SCOPE_MISSING`)")},
)  # fmt: skip
def list_shares(
    rt: Runtime, wallet: WalletDep, holderRef: str = Query(..., max_length=128)
) -> list[dict[str, Any]]:
    return [s.to_json() for s in rt.shares.list(wallet.organisation_id, holderRef)]


@router.delete(
    "/shares/{share_id}", summary="Withdraw a share (wallets)", response_model=None, openapi_extra=API_KEY,
    responses={200: {"model": ShareOut, "description": "The share, withdrawn"},
               **answers(401, 403, 404, 422, 429, 503, s403="Only a wallet's key may manage shares (`SCOPE_MISSING`)", s404="No such share of this holder at your wallet")},
)  # fmt: skip
def withdraw_share(
    share_id: str, rt: Runtime, wallet: WalletDep, holderRef: str = Query(..., max_length=128)
) -> dict[str, Any]:
    return rt.shares.withdraw(wallet.organisation_id, holderRef, share_id).to_json()


@router.get(
    "/shares/{share_id}/dynamic-code", summary="The current code of a dynamic share (wallets)", response_model=None,
    openapi_extra=API_KEY,
    responses={200: {"model": DynamicCodeOut, "description": "The code of this 30-second window"},
               **answers(401, 403, 404, 422, 429, 503, s403="Only a wallet's key may manage shares (`SCOPE_MISSING`)", s404="No such active dynamic share of this holder")},
)  # fmt: skip
def dynamic_code(
    share_id: str, rt: Runtime, wallet: WalletDep, holderRef: str = Query(..., max_length=128)
) -> dict[str, Any]:
    state = rt.shares.get(wallet.organisation_id, holderRef, share_id)
    if not state.dynamic or state.problem:
        raise NotFound("Not an active dynamic share", code=state.problem or ErrorCode.SHARE_NOT_DYNAMIC)
    now = dt.datetime.now(dt.UTC)
    window_end = (int(now.timestamp()) // 30 + 1) * 30
    return {
        "code": rt.shares.dynamic_code(share_id, now),
        "validUntil": dt.datetime.fromtimestamp(window_end, dt.UTC).isoformat(),
    }


ACCESS_LOG_PAGE_MAX = 500
NEXT_BEFORE = "X-Next-Before"
_PAGING = (
    "Newest first, a page at a time: at most `limit` entries (default 200, at most 500). When older "
    f"entries remain, the answer's `{NEXT_BEFORE}` header holds the cursor of the next page, and "
    '`Link: <…>; rel="next"` its URL: ask again with `before=<that cursor>` (and the same '
    "`holderRef`, `digest`, `shareId`) until the header is absent, which is the oldest page. A "
    "cursor is opaque: pass it back as given. Pages do not shift when new entries arrive, so "
    "every entry is reached however many were logged after it."
)


@router.get(
    "/access-log", summary="Who verified a holder's certificates (wallets)", response_model=None,
    openapi_extra=API_KEY, description=_PAGING,
    responses={200: {"model": list[AccessEntryOut], "description": "A page of the log, newest first",
                     "headers": {
                         NEXT_BEFORE: {"description": "The `before` of the next, older page; absent on the last page",
                                       "schema": {"type": "string"}},
                         "Link": {"description": 'The next page\'s URL, `rel="next"` (RFC 8288); absent on the last page',
                                  "schema": {"type": "string"}}}},
               **answers(401, 403, 404, 422, 429, 503, s403="Only a wallet's key may manage shares (`SCOPE_MISSING`)", s404="A digest or share not the holder's at your wallet (`ACCESS_LOG_NOT_FOUND`)",
                         s422="Invalid request, `limit` out of 1…500, or a `before` no page gave (`CURSOR_INVALID`)")},
)  # fmt: skip
def access_log(
    request: Request,
    response: Response,
    rt: Runtime,
    wallet: WalletDep,
    holderRef: str = Query(..., min_length=1, max_length=128, description="The signed-in holder"),
    digest: list[str] = Query(default=[], description="Only these certificates (held for the holder)"),
    shareId: list[str] = Query(default=[], description="Only these shares (made for the holder)"),
    limit: int = Query(200, ge=1, le=ACCESS_LOG_PAGE_MAX, description="At most this many entries"),
    before: str | None = Query(
        None,
        min_length=1,
        max_length=200,
        description=f"The cursor of the page: a previous answer's `{NEXT_BEFORE}`",
    ),
) -> list[dict[str, Any]]:
    """Newest first: the verifications of the certificates this wallet holds for the holder
    (`POST /v1/holdings`) and of the shares it made for them; a named digest or share that is
    not theirs at this wallet is 404 `ACCESS_LOG_NOT_FOUND`. Paged by `before` (`_PAGING`)."""
    digests, share_ids = rt.holdings.log_scope(
        wallet.organisation_id, holderRef, digests=digest, share_ids=shareId
    )
    entries, next_before = rt.access_log.page(
        digests=digests, share_ids=share_ids, limit=limit, before=before
    )
    if next_before is not None:
        response.headers[NEXT_BEFORE] = next_before
        following = request.url.include_query_params(before=next_before)
        response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    return entries


@router.get(
    "/shares/{token}/presentation", summary="A shared disclosure, for a trusted node of another region",
    response_model=None, openapi_extra=API_KEY,
    description="The disclosure a holder shared, for the trusted node of another region that verifies it. The "
    "fetch is recorded against your node's key: only a node that fetched a share may then report the "
    "verification (`POST /v1/access-log/remote`); a report of any other node is answered as for an unknown share.",
    responses={200: {"model": SharedPresentationOut, "description": "The disclosure the holder shared"},
               **answers(401, 403, 404, 410, 422, 429, 503, s403="Only a trusted node's (or a wallet's) key may fetch it",
                         s404="No such share, or it expired, was withdrawn or used up", s410="The share is no longer shown")},
)  # fmt: skip
def shared_presentation(
    token: str,
    rt: Runtime,
    node: NodeDep,
    c: str | None = Query(None, max_length=64, description="A dynamic share's current code"),
) -> dict[str, Any]:
    state = rt.shares.presentation_for_node(token, c)
    if state.presentation is None:
        raise NotFound(
            "This share has expired or was withdrawn", code=state.problem or ErrorCode.SHARE_NOT_FOUND
        )
    # this node may now report looks at the share (`POST /v1/access-log/remote`), and only it
    record_fetch(rt.sessions, state.id, node.organisation_id)
    return state.presentation.to_json()
