"""Request and response bodies of the issuer API (camelCase on the wire)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from issuer.service import JobView

TYPE_CODE = Field(
    description="Certificate type code: the defining authority's 统一社会信用代码 (18) + 3 digits.",
    examples=["11100000000013338W001"],
)
TYPE_NAME = Field(
    None,
    max_length=200,
    description="The certificate's name when a record gives none.",
    examples=["营业执照"],
)
RECORD_EXAMPLE = {"holder": {"name": "杭州示例科技有限公司", "code": "91330100MA2XXXXX0X"}, "validUntil": "2045-06-30",
                  "ext": {"legalRepresentative": "张三", "address": "杭州市西湖区"}}  # fmt: skip


class ApiModel(BaseModel):
    """A request body: unknown keys are an error (a typo must not be silently ignored)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Answer(BaseModel):
    """A response body: keys the service adds later are dropped, not a failure."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class CertificateRequest(ApiModel):
    type_code: str = TYPE_CODE
    type_name: str | None = TYPE_NAME
    record: dict[str, Any] = Field(
        description="Fields (GB/T 36903): holder {name, code, codeType?}, validFrom?, validUntil?, number?, name?, ext.*",
        examples=[RECORD_EXAMPLE],
    )


class BatchRequest(ApiModel):
    type_code: str = TYPE_CODE
    type_name: str | None = TYPE_NAME
    records: list[dict[str, Any]] = Field(
        description="One object per certificate (as `record` of POST /v1/certificates)."
    )


class RecordError(Answer):
    position: int = Field(description="The record's position in the request, from 1.")
    code: str
    field: str | None
    message: str


class JobCounts(Answer):
    pending: int = 0
    sealed: int = 0
    anchored: int = 0
    confirmed: int = 0
    refused: int = Field(
        0, description="Certificates whose batch the chain refused for good (see `refusals`): never retried."
    )
    failed: int = 0


class Refusal(Answer):
    batch_root: str
    code: str = Field(
        description="The contract error, e.g. TrustRegistryTypeNotGranted or TrustRegistryKeyNotActive."
    )
    message: str | None
    count: int = Field(description="Certificates of this job in that batch.")


class JobResponse(Answer):
    id: str
    type_code: str
    total: int
    done: bool = Field(description="Every record is confirmed on chain, failed, or refused by the chain.")
    counts: JobCounts
    errors: list[RecordError]
    identifiers: list[str] = Field(
        description="Identifiers of the job's certificates in record order (first 1,000)."
    )
    refusals: list[Refusal] = Field(
        default_factory=list, description="Batches of this job the chain refused to anchor, and why."
    )

    @classmethod
    def of(cls, job: JobView) -> JobResponse:
        return cls(
            id=job.id, type_code=job.type_code, total=job.total, done=job.done, counts=JobCounts(**job.counts),
            errors=[RecordError(**e) for e in job.errors], identifiers=job.identifiers,
            refusals=[Refusal(**r) for r in job.refusals],
        )  # fmt: skip


class BatchInfo(Answer):
    root: str
    index: int | None
    tx_hash: str | None
    block: int | None
    state: str | None = Field(
        None, description="The batch's state: sealed, sending, mined, confirmed or refused."
    )
    refusal: str | None = Field(
        None, description="The contract error that refused the batch (state refused)."
    )
    refusal_message: str | None = None


class CertificateResponse(Answer):
    identifier: str
    type_code: str
    state: Literal["pending", "sealed", "anchored", "confirmed", "refused"]
    status: Literal["active", "suspended", "revoked"]
    status_reason: int | None
    version: int
    previous_identifier: str | None
    superseded_by: str | None
    digest: str
    batch: BatchInfo | None


class StatusRequest(ApiModel):
    status: Literal["active", "suspended", "revoked"] = Field(
        description="active reinstates; revoked is final."
    )
    reason: int = Field(
        ge=1,
        le=99,
        description="GB reason: 01 有效, 02 暂扣, 03 撤销, 04 注销, 07 吊销, 99 其他.",
        examples=[2],
    )
    note: str | None = Field(None, max_length=1000)


class StatusResponse(Answer):
    identifier: str
    status: str
    reason: int
    tx_hash: str
    block: int


class RenewalRequest(ApiModel):
    changes: dict[str, Any] = Field(
        default_factory=dict,
        description="Fields that change in the new version (e.g. validUntil, ext.address); the rest is carried over.",
        examples=[{"validUntil": "2050-06-30"}],
    )


class ClaimCodeResponse(Answer):
    code: str = Field(description="One-time code for the holder's wallet, e.g. ABCD-EFGH-JKLM.")
    expires_at: dt.datetime


PACKAGE_RESPONSE = {
    "description": "The holder package (format ecert/1): all field leaves, digest, seal, batch proof.",
    "content": {"application/json": {"schema": {"type": "object"}}},
}
