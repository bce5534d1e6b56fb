"""Claims: the holder's wallet redeems a one-time claim code for the holder package. Public (no
API key): the code itself is the credential, 60 bits, single use, expiring. So it travels in the
POST body, never in a URL (paths end up in access logs and proxies' logs), and each client
address may fail only so many codes a minute (`ECERT_ISSUER_CLAIM_RATE_PER_MIN`). Redemptions
are not counted: a wallet server claims for all its holders from one address, and guessing a
60-bit code bound to its holder is hopeless anyway; the limit stops floods of guesses."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from issuer.api.deps import Runtime
from issuer.api.schemas import PACKAGE_RESPONSE
from registry.errors import EcertError

router = APIRouter(prefix="/v1/claims", tags=["claims"])


class ClaimRequest(BaseModel):
    code: str = Field(max_length=40, description="The claim code, e.g. ABCD-EFGH-JKLM")
    holderCode: str | None = Field(
        None, max_length=18, description="The holder's ID number as the wallet knows it: another holder's certificate "
        "is refused (403 CLAIM_NOT_YOURS) and the code stays usable",
    )  # fmt: skip


@router.post(
    "", responses={200: PACKAGE_RESPONSE, 429: {"description": "Too many failed claim attempts from this address (RATE_LIMITED)"}},
    summary="Redeem a claim code (holder, once)",
)  # fmt: skip
def redeem(body: ClaimRequest, runtime: Runtime, request: Request) -> dict[str, Any]:
    address = request.client.host if request.client else "-"
    runtime.claim_limit.check(address, what="failed claim attempts from this address")
    try:
        return runtime.service.redeem_claim(body.code, body.holderCode).to_json()
    except EcertError:
        runtime.claim_limit.spend(address)
        raise
