"""Claims: the holder's wallet redeems a one-time claim code for the holder package. Public (no
API key): the code itself is the credential, 60 bits, single use, expiring."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, Field

from issuer.api.deps import Runtime
from issuer.api.schemas import PACKAGE_RESPONSE

router = APIRouter(prefix="/v1/claims", tags=["claims"])


class ClaimRequest(BaseModel):
    holderCode: str | None = Field(
        None, max_length=18, description="The holder's ID number as the wallet knows it: another holder's certificate "
        "is refused (403 CLAIM_NOT_YOURS) and the code stays usable",
    )  # fmt: skip


@router.post("/{code}", responses={200: PACKAGE_RESPONSE}, summary="Redeem a claim code (holder, once)")
def redeem(
    code: Annotated[str, Path(max_length=40, description="e.g. ABCD-EFGH-JKLM")],
    runtime: Runtime,
    body: Annotated[ClaimRequest | None, Body()] = None,
) -> dict[str, Any]:
    return runtime.service.redeem_claim(code, body.holderCode if body else None).to_json()
