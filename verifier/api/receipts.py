"""The node's receipt key; receipt checking for anyone who kept one; and, for the organisation
that asked for them, the receipts this node signed, by id, as JSON or as a printable PDF."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from verifier.api.deps import CallerDep, Runtime
from verifier.api.openapi import API_KEY, answers
from verifier.api.schemas import KeptReceiptOut, ReceiptCheckIn, ReceiptCheckOut, ReceiptKeyOut
from verifier.receipt_pdf import receipt_pdf
from verifier.receipts import covers_disclosed, verify_receipt

router = APIRouter(prefix="/v1", tags=["receipts"])
ReceiptId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The receipt's id (`receiptId`)")]


@router.get(
    "/receipt-key", summary="This node's Ed25519 receipt key", response_model=None,
    description="The public key every receipt of this node is signed with: check receipts offline with it.",
    responses={200: {"model": ReceiptKeyOut, "description": "The key, PEM, with its id"}, **answers(503)},
)  # fmt: skip
def receipt_key(rt: Runtime) -> dict[str, Any]:
    return {
        "algorithm": "Ed25519",
        "keyId": rt.receipts.key_id,
        "publicKeyPem": rt.receipts.public_key_pem(),
        "region": rt.settings.region,
    }


@router.post(
    "/receipts/verify", summary="Check a receipt's signature against this node's key", response_model=None,
    description="Send the `receipt` and `signature` you kept and, to prove what you saw, the answer's "
    "`disclosed`: `valid` is true only if this node signed the receipt and it covers exactly those values. "
    "Receipts of before `disclosedDigest` still check (without `disclosed`).",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": ReceiptCheckIn.model_json_schema()}}}},
    responses={200: {"model": ReceiptCheckOut, "description": "Whether the receipt is this node's, unaltered"},
               **answers(400, 422, 503)},
)  # fmt: skip
def check_receipt(document: dict[str, Any], rt: Runtime) -> dict[str, Any]:
    given = "disclosed" in document
    disclosed = document.pop("disclosed", None)
    valid = verify_receipt(document, rt.receipts.public_key())
    if not given:
        return {"valid": valid}
    covered = covers_disclosed(document, disclosed)
    return {"valid": valid and covered, "coversDisclosed": covered}


KEPT = answers(
    401, 404, 422, 429, 503, s404="No receipt of your organisation has this id (`RECEIPT_NOT_FOUND`)"
)


@router.get(
    "/receipts/{receipt_id}.pdf", summary="A receipt of yours, as a printable PDF", response_class=Response,
    description="One A4 page with the verdict, the values checked and the signed receipt; fonts embedded.",
    openapi_extra=API_KEY,
    responses={200: {"description": "The PDF", "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}},
               **KEPT},
)  # fmt: skip
async def receipt_as_pdf(receipt_id: ReceiptId, rt: Runtime, who: CallerDep) -> Response:
    kept = await run_in_threadpool(rt.receipt_store.get, who.organisation_id, receipt_id)
    pdf = await run_in_threadpool(receipt_pdf, kept)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="receipt-{kept.id}.pdf"'},
    )


@router.get(
    "/receipts/{receipt_id}", summary="A receipt of yours, by id", response_model=None, openapi_extra=API_KEY,
    description="A receipt this node signed for your organisation: the signed receipt, the values it "
    "covers (`disclosed`) and what the history lists. Another organisation's is 404.",
    responses={200: {"model": KeptReceiptOut, "description": "The receipt"}, **KEPT},
)  # fmt: skip
def receipt_by_id(receipt_id: ReceiptId, rt: Runtime, who: CallerDep) -> dict[str, Any]:
    return rt.receipt_store.get(who.organisation_id, receipt_id).to_json()
