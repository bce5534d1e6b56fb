"""POST /v1/access-log/remote: a trusted node of another region reports a verification there of
a share kept here, for the holder's access log (`verifier.remote_log`). Idempotent by event id:
201 when stored, 200 when it was stored before. Only from the node that fetched the share's
disclosure (`verifier.remote_log`): any other is told the share is unknown."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from verifier.api.deps import Runtime, TrustedNodeDep
from verifier.api.openapi import API_KEY, answers
from verifier.api.schemas import RemoteStoredOut
from verifier.remote_log import RemoteAccess, store_remote_access

router = APIRouter(prefix="/v1/access-log", tags=["shares"])


@router.post(
    "/remote", status_code=201,
    summary="Report a verification of one of this node's shares (trusted nodes of other regions)",
    response_model=None, openapi_extra=API_KEY,
    responses={201: {"model": RemoteStoredOut, "description": "Stored"},
               200: {"model": RemoteStoredOut, "description": "Stored before: nothing changed"},
               **answers(400, 401, 403, 404, 422, 429, 503, s403="Only a trusted node's key may report (`SCOPE_MISSING`)",
                         s404="No share of this node has that token hash, or none whose disclosure your node "
                              "fetched (`SHARE_NOT_FOUND`, the same answer: only the node that fetched a share "
                              "with `GET /v1/shares/{token}/presentation` may report looks at it)")},
)  # fmt: skip
def report_access(
    event: RemoteAccess, rt: Runtime, node: TrustedNodeDep, response: Response
) -> dict[str, Any]:
    stored = store_remote_access(rt.sessions, event, reported_by=node.name, reporter_id=node.organisation_id)
    if not stored:
        response.status_code = 200
    return {"eventId": event.eventId, "stored": stored}
