"""GET /v1/verifications/history (and .csv): the calling organisation's verifications at this
node, from the receipts kept for it (`verifier.history`). Another organisation's never appear."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from verifier.api.deps import CallerDep, Runtime
from verifier.api.openapi import API_KEY, answers
from verifier.api.schemas import HistoryOut
from verifier.history import CSV_COLUMNS, MAX_PAGE, HistoryQuery

router = APIRouter(prefix="/v1/verifications", tags=["verifications"])
FILTERS = answers(401, 422, 429, 503)


@router.get(
    "/history", summary="Your organisation's verifications", response_model=None, openapi_extra=API_KEY,
    description="Newest first, a page at a time (`limit`, `offset`; `total` counts them all). Each has "
    "its receipt id: `GET /v1/receipts/{id}` has the values checked.",
    responses={200: {"model": HistoryOut, "description": "One page"}, **FILTERS},
)  # fmt: skip
def history(
    rt: Runtime,
    who: CallerDep,
    since: Annotated[dt.datetime | None, Query(alias="from", description="From this time (ISO 8601), inclusive")] = None,
    until: Annotated[dt.datetime | None, Query(alias="to", description="Before this time (ISO 8601)")] = None,
    identifier: Annotated[str | None, Query(max_length=120, pattern=r"^[^\x00]*$", description="Only this certificate identifier")] = None,
    verdict: Annotated[Literal["VALID", "INVALID", "ERROR"] | None, Query(description="Only this verdict")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:  # fmt: skip
    query = HistoryQuery(since, until, identifier, verdict)
    return rt.verification_history.search(who.organisation_id, query, limit=limit, offset=offset).to_json()


@router.get(
    "/history.csv", summary="Your organisation's verifications, as CSV", response_class=Response,
    openapi_extra=API_KEY,
    description=f"The same filters; every match (up to 100,000), UTF-8 with a byte-order mark so Excel "
    f"reads Chinese. Columns: {', '.join(CSV_COLUMNS)}.",
    responses={200: {"description": "The CSV file", "content": {"text/csv": {"schema": {"type": "string"}}}},
               **FILTERS},
)  # fmt: skip
def history_csv(
    rt: Runtime,
    who: CallerDep,
    since: Annotated[dt.datetime | None, Query(alias="from", description="From this time (ISO 8601), inclusive")] = None,
    until: Annotated[dt.datetime | None, Query(alias="to", description="Before this time (ISO 8601)")] = None,
    identifier: Annotated[str | None, Query(max_length=120, pattern=r"^[^\x00]*$", description="Only this certificate identifier")] = None,
    verdict: Annotated[Literal["VALID", "INVALID", "ERROR"] | None, Query(description="Only this verdict")] = None,
) -> Response:  # fmt: skip
    body = rt.verification_history.csv(who.organisation_id, HistoryQuery(since, until, identifier, verdict))
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="verifications.csv"'},
    )
