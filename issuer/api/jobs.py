"""Jobs: what a submission became (its certificates, its rejected records) and how far along
anchoring it is. Submissions (POST /v1/certificates, /v1/batches, /renewals) answer 202 with the
job and its `Location`; clients poll GET /v1/jobs/{id} until `done`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Response

from issuer.api.deps import Caller, OwnedJob, Runtime, TypeGrants
from issuer.api.schemas import JobResponse
from issuer.auth import Principal
from issuer.runtime import IssuerRuntime
from issuer.service import JobView
from registry.error_codes import ErrorCode
from registry.errors import EcertError

MAX_RECORDS = 100_000  # per request; split bigger files

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


def job_location(job_id: str) -> str:
    return f"/v1/jobs/{job_id}"


def accepted(response: Response, job: JobView) -> JobResponse:
    response.headers["Location"] = job_location(job.id)
    return JobResponse.of(job)


def submit_records(
    runtime: IssuerRuntime,
    grants: TypeGrants,
    caller: Principal,
    type_code: str,
    type_name: str | None,
    records: Sequence[Mapping[str, Any]],
    idempotency_key: str | None,
    *,
    field: str = "records",
) -> JobView:
    type_code = grants.check(runtime, caller.agency_code, type_code)
    if not records:
        raise EcertError("No records to issue", code=ErrorCode.BATCH_EMPTY, field=field)
    if len(records) > MAX_RECORDS:
        raise EcertError(
            f"At most {MAX_RECORDS:,} records per request: split the file",
            code=ErrorCode.BATCH_TOO_LARGE,
            field=field,
        )
    extra = {"type_name": type_name} if type_name else {}
    return runtime.service.submit(
        caller.agency_code, type_code, records, idempotency_key=idempotency_key, **extra
    )


@router.get("/{job_id}", response_model=JobResponse, summary="A job's progress")
def get_job(job_id: OwnedJob, caller: Caller, runtime: Runtime) -> JobResponse:
    return JobResponse.of(runtime.service.job(caller.agency_code, job_id))
