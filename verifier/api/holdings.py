"""Holdings, for wallets: the certificates a wallet keeps for a holder, bound by their full holder
package, whose access log the wallet may then read for that holder (`verifier/holdings.py`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from registry.certificate.presentation import Presentation
from verifier.api.deps import Runtime, WalletDep
from verifier.api.openapi import API_KEY, answers
from verifier.api.schemas import HoldingOut

router = APIRouter(prefix="/v1", tags=["holdings"])


class HoldingRequest(BaseModel):
    holderRef: str = Field(
        ..., min_length=1, max_length=128, description="The wallet's opaque id of the holder"
    )
    presentation: dict[str, Any] = Field(
        ..., description="The full holder package the holder claimed (not a disclosure)"
    )


@router.post(
    "/holdings", status_code=201, summary="Bind a claimed certificate to a holder of this wallet (wallets)",
    response_model=None, openapi_extra=API_KEY,
    responses={201: {"model": HoldingOut, "description": "Bound"},
               200: {"model": HoldingOut, "description": "Already bound: nothing changed"},
               **answers(400, 401, 403, 422, 429, 503, s403="Only a wallet's key may bind holdings (`SCOPE_MISSING`)",
                         s422="A disclosure (CERT_PARTIAL) or a package that does not hash to its digest (CERT_TAMPERED)")},
)  # fmt: skip
def hold(body: HoldingRequest, rt: Runtime, wallet: WalletDep, response: Response) -> dict[str, Any]:
    held, new = rt.holdings.hold(
        wallet.organisation_id, body.holderRef, Presentation.from_json(body.presentation)
    )
    if not new:
        response.status_code = 200
    return held.to_json()


@router.get(
    "/holdings", summary="The certificates this wallet holds for a holder (wallets)", response_model=None,
    openapi_extra=API_KEY,
    responses={200: {"model": list[HoldingOut], "description": "The holder's holdings at this wallet"},
               **answers(401, 403, 422, 429, 503, s403="Only a wallet's key may read holdings (`SCOPE_MISSING`)")},
)  # fmt: skip
def holdings(
    rt: Runtime, wallet: WalletDep, holderRef: str = Query(..., min_length=1, max_length=128)
) -> list[dict[str, Any]]:
    return [h.to_json() for h in rt.holdings.held(wallet.organisation_id, holderRef)]
