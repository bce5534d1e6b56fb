"""`GET /v1/stats/verifications`: how often an agency's certificates were verified at this node,
per day, by the verifying organisation's region, verdict and failure reason — counts only, no
personal data (no holder, identifier, organisation name, purpose or address). The issuer's
dashboard (`issuer.dashboard`) reads it with a key of kind `agency` or `node`.

A verification is the agency's when its certificate's batch root is one the chain says the agency
anchored (this node's index), or, for an entry without a root (logged before roots were), when its
identifier names the agency as issuer. Days are China Standard Time (`registry.stats_days`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from registry.certificate.identifiers import OID_ROOT
from registry.error_codes import ErrorCode
from registry.errors import EcertError, NotAuthorised
from registry.indexer.store import Batch as IndexedBatch
from registry.stats_days import bounds, day_of, parse_period
from verifier.api.deps import Runtime, caller
from verifier.api.openapi import API_KEY, answers
from verifier.models import AccessEntry
from verifier.orgs import Caller
from verifier.runtime import VerifierRuntime

router = APIRouter(prefix="/v1/stats", tags=["stats"])


class CountOut(BaseModel):
    day: str = Field(..., description="The CST day, YYYY-MM-DD")
    region: str = Field(
        ..., description="The verifying organisation's region (GB/T 2260), or empty for link visitors"
    )
    verdict: str = Field(..., description="VALID, INVALID or ERROR")
    reason: str | None = Field(None, description="The failing check's code, for INVALID and ERROR")
    count: int


class VerificationCountsOut(BaseModel):
    agency: str
    from_: str = Field(..., alias="from", description="The first CST day counted")
    to: str = Field(..., description="The last CST day counted")
    timezone: str = Field(..., description="Always +08:00: days are China Standard Time")
    node: str = Field(..., description="This node's region")
    rows: list[CountOut]


USCC = r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$"


async def stats_reader(who: Annotated[Caller, Depends(caller)]) -> Caller:
    """An agency (its dashboard) or a node: the organisations that may read aggregated counts."""
    if who.kind not in ("agency", "node"):
        raise NotAuthorised("Only an agency or a node may read verification statistics",
                            code=ErrorCode.SCOPE_MISSING)  # fmt: skip
    return who


def verification_counts(
    rt: VerifierRuntime, agency: str, first: str | None, last: str | None
) -> dict[str, Any]:
    try:
        start_day, end_day = parse_period(first, last)
    except ValueError as exc:
        raise EcertError(f"Invalid period: {exc}", code=ErrorCode.REQUEST_INVALID, field="from") from None
    start, end = bounds(start_day, end_day)
    dialect = rt.engine.dialect.name
    day = day_of(AccessEntry.at, dialect).label("day")
    keys = (day, AccessEntry.organisation_region, AccessEntry.verdict, AccessEntry.reason)
    in_period = (AccessEntry.at >= start, AccessEntry.at < end)
    counts: dict[tuple[str, str, str, str | None], int] = {}
    with rt.sessions() as session:
        roots = {
            "0x" + bytes(root).hex()
            for root in session.scalars(select(IndexedBatch.root).where(IndexedBatch.agency_code == agency))
        }
        by_root = session.execute(
            select(*keys, AccessEntry.batch_root, func.count())
            .where(*in_period, AccessEntry.batch_root.is_not(None))
            .group_by(*keys, AccessEntry.batch_root)
        )
        for d, region, verdict, reason, root, n in by_root:
            if str(root).lower() in roots:
                counts[(d, region, verdict, reason)] = counts.get((d, region, verdict, reason), 0) + n
        named = f"{OID_ROOT}.{'_' * 21}.{agency}.%"  # <type (21)>.<issuer USCC>.<serial>…
        by_identifier = session.execute(
            select(*keys, func.count())
            .where(*in_period, AccessEntry.batch_root.is_(None), AccessEntry.identifier.like(named))
            .group_by(*keys)
        )
        for d, region, verdict, reason, n in by_identifier:
            counts[(d, region, verdict, reason)] = counts.get((d, region, verdict, reason), 0) + n
    rows = [
        {"day": d, "region": region, "verdict": verdict, "reason": reason, "count": n}
        for (d, region, verdict, reason), n in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1],
                                                                                    kv[0][2], kv[0][3] or ""))
    ]  # fmt: skip
    return {"agency": agency, "from": start_day.isoformat(), "to": end_day.isoformat(), "timezone": "+08:00",
            "node": rt.settings.region, "rows": rows}  # fmt: skip


@router.get(
    "/verifications", summary="Verifications of an agency's certificates per day, region, verdict, reason",
    response_model=None, openapi_extra=API_KEY,
    description="Counts of verifications at this node of the certificates `agency` issued, per CST day "
    "(`YYYY-MM-DD`), verifying organisation's region, verdict and failure reason; no personal data. "
    "For keys of kind `agency` or `node`. `from`/`to`: CST days, both included (default the last 30, at "
    "most 366).",
    responses={200: {"description": "`rows` of {day, region, verdict, reason, count}", "model": VerificationCountsOut},
               **answers(401, 403, 422, 429, 503)},
)  # fmt: skip
async def verifications(
    rt: Runtime,
    _who: Annotated[Caller, Depends(stats_reader)],
    agency: str = Query(..., pattern=USCC, description="The issuing agency's 统一社会信用代码"),
    first: str | None = Query(None, alias="from", pattern=r"^\d{4}-\d{2}-\d{2}$"),
    last: str | None = Query(None, alias="to", pattern=r"^\d{4}-\d{2}-\d{2}$"),
) -> dict[str, Any]:
    answer: dict[str, Any] = await run_in_threadpool(verification_counts, rt, agency, first, last)
    return answer
