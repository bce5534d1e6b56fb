"""The node's receipt key, and receipt checking for anyone who kept one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from verifier.api.deps import Runtime
from verifier.receipts import verify_receipt

router = APIRouter(prefix="/v1", tags=["receipts"])


@router.get("/receipt-key", summary="This node's Ed25519 receipt key")
def receipt_key(rt: Runtime) -> dict[str, Any]:
    return {
        "algorithm": "Ed25519",
        "keyId": rt.receipts.key_id,
        "publicKeyPem": rt.receipts.public_key_pem(),
        "region": rt.settings.region,
    }


@router.post("/receipts/verify", summary="Check a receipt's signature against this node's key")
def check_receipt(document: dict[str, Any], rt: Runtime) -> dict[str, Any]:
    return {"valid": verify_receipt(document, rt.receipts.public_key())}
