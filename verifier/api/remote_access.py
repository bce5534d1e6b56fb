"""POST /v1/access-log/remote: a trusted node of another region reports a verification there of
a share kept here, for the holder's access log (`verifier.remote_log`). Idempotent by event id:
201 when stored, 200 when it was stored before."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from verifier.api.deps import Runtime, TrustedNodeDep
from verifier.remote_log import RemoteAccess, store_remote_access

router = APIRouter(prefix="/v1/access-log", tags=["shares"])


@router.post(
    "/remote", status_code=201,
    summary="Report a verification of one of this node's shares (trusted nodes of other regions)",
    responses={200: {"description": "Stored before: nothing changed"}},
)  # fmt: skip
def report_access(
    event: RemoteAccess, rt: Runtime, node: TrustedNodeDep, response: Response
) -> dict[str, Any]:
    stored = store_remote_access(rt.sessions, event, reported_by=node.name)
    if not stored:
        response.status_code = 200
    return {"eventId": event.eventId, "stored": stored}
