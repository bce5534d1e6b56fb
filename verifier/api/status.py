"""A certificate's status at any time T, from the index history (suspension windows included).

Like a verification, it answers only from an index that is fresh against a readable chain head:
otherwise 503 (could not check), never an old "active"."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Query

from registry.error_codes import ErrorCode
from registry.errors import CertificateError, ChainUnavailable
from registry.indexer import IndexStale
from verifier.api.deps import CallerDep, Runtime
from verifier.api.openapi import API_KEY, answers
from verifier.api.schemas import StatusOut

router = APIRouter(prefix="/v1", tags=["status"])


@router.get(
    "/status", summary="Status of the certificate at (root, index) at time T", response_model=None,
    openapi_extra=API_KEY,
    description="Active, suspended or revoked at `at` (default now), from the index history; 503 when the "
    "index is not fresh (never an old answer).",
    responses={200: {"model": StatusOut, "description": "The status then"},
               **answers(401, 422, 429, 503, s422="Malformed root or index, or no such anchored batch (`NOT_ANCHORED`)")},
)  # fmt: skip
def status_at(
    rt: Runtime,
    _who: CallerDep,
    root: str = Query(..., pattern=r"^0x[0-9a-fA-F]{64}$"),
    index: int = Query(..., ge=0),
    at: dt.datetime | None = Query(None, description="ISO time; default now"),
) -> dict[str, Any]:
    try:
        rt.reader.freshness()
    except IndexStale as exc:
        raise ChainUnavailable(exc.message, code=ErrorCode.INDEX_STALE) from exc
    moment = at or dt.datetime.now(dt.UTC)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    found = rt.history.certificate_status_at(bytes.fromhex(root[2:]), index, int(moment.timestamp()))
    if not found.anchored or found.status is None:  # an anchored batch always has a status
        raise CertificateError(
            "No such anchored batch in the index", code=ErrorCode.NOT_ANCHORED, field="root"
        )
    return {
        "root": root, "index": index, "at": moment.isoformat(), "status": found.status.name.lower(),
        "reason": found.reason, "since": found.since, "indexedBlock": rt.history.indexed_block,
    }  # fmt: skip
