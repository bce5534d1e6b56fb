"""A small JSON API over the same services, for the wallet's own scripts and a future app.
Signed in by the same session cookie; unsafe methods need the CSRF token in `X-CSRF-Token`.
Errors are RFC 9457 problem+json; another holder's certificate or share is 404, as unknown ones."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import BaseModel, Field

from wallet.sharing import ShareView, access_log_page
from wallet.web import CsrfRejected, HolderDep, SignedInPage, same_origin

router = APIRouter(prefix="/api/v1", tags=["api"])


def csrf_header(p: HolderDep, x_csrf_token: Annotated[str | None, Header()] = None) -> SignedInPage:
    if not same_origin(p.request) or not p.rt.csrf.check(p.csrf_binding, x_csrf_token):
        raise CsrfRejected("Send the page's CSRF token in X-CSRF-Token")
    return p


Checked = Annotated[SignedInPage, Depends(csrf_header)]


class ShareBody(BaseModel):
    fields: list[str] = Field(..., max_length=100)
    purpose: str = Field("", max_length=200)
    expiresInMinutes: int
    singleUse: bool = False
    dynamic: bool = False
    identifiedOnly: bool = Field(False, description="Only identified organisations may open it")


def _share(s: ShareView) -> dict[str, Any]:
    return {"id": s.id, "certificateId": s.certificate_id, "url": s.url if s.active else None, "fields": list(s.fields),
            "purpose": s.purpose, "expiresAt": s.expires_at.isoformat(), "singleUse": s.single_use, "dynamic": s.dynamic,
            "state": s.state}  # fmt: skip


@router.get("/certificates", summary="The holder's certificates with their status")
def certificates(p: HolderDep) -> list[dict[str, Any]]:
    out = []
    for card in p.rt.vault.list(p.holder.id):
        status = p.rt.vault.status(card)
        fields = card.fields
        out.append({"id": card.id, "identifier": card.identifier, "typeCode": card.type_code, "name": fields.get("name"),
                    "number": fields.get("number"), "issuer": (fields.get("issuer") or {}).get("name"),
                    "status": {"verdict": status.verdict, "reason": status.reason}})  # fmt: skip
    return out


@router.get("/certificates/{card_id}", summary="One certificate: its fields and status")
def certificate(card_id: str, p: HolderDep) -> dict[str, Any]:
    card = p.rt.vault.get(p.holder.id, card_id)
    status = p.rt.vault.status(card, fresh=True)
    return {"id": card.id, "identifier": card.identifier, "digest": card.digest, "fields": card.fields,
            "status": {"verdict": status.verdict, "reason": status.reason, "checks": status.checks}}  # fmt: skip


@router.post("/certificates/{card_id}/shares", status_code=201, summary="Share chosen fields")
def create_share(card_id: str, body: ShareBody, p: Checked) -> dict[str, Any]:
    card = p.rt.vault.get(p.holder.id, card_id)
    made = p.rt.sharing.create(p.holder, card, body.fields, purpose=body.purpose, minutes=body.expiresInMinutes,
                               single_use=body.singleUse, dynamic=body.dynamic,
                               identified_only=body.identifiedOnly)  # fmt: skip
    return _share(made)


@router.get("/shares", summary="The holder's shares")
def shares(p: HolderDep) -> list[dict[str, Any]]:
    return [_share(s) for s in p.rt.sharing.list(p.holder)[0]]


@router.delete("/shares/{share_id}", summary="Withdraw a share")
def withdraw(share_id: str, p: Checked) -> dict[str, Any]:
    p.rt.sharing.withdraw(p.holder, share_id)
    return _share(p.rt.sharing.get(p.holder, share_id))


@router.get("/shares/{share_id}/dynamic-code", summary="The current link of a dynamic share")
def dynamic_code(share_id: str, p: HolderDep) -> dict[str, Any]:
    url, valid_until = p.rt.sharing.dynamic_link(p.holder, share_id)
    return {"url": url, "validUntil": valid_until.isoformat()}


@router.get(
    "/access-log", summary="Who verified the holder's certificates",
    description="A page, newest first; when older entries remain, `X-Next-Before` holds the `before` of the next page.",
)  # fmt: skip
def access(
    p: HolderDep,
    response: Response,
    before: str | None = Query(
        None, min_length=1, max_length=200, description="The `X-Next-Before` of the previous page"
    ),
) -> list[dict[str, Any]]:
    page = access_log_page(
        p.holder, p.rt.vault, p.rt.verifier, org_name=p.rt.settings.org_name, before=before
    )
    entries = page.entries
    if page.older is not None:
        response.headers["X-Next-Before"] = page.older
    return [{"at": e.at.isoformat(), "organisation": e.organisation, "region": e.region, "purpose": e.purpose,
             "certificateId": e.certificate_id, "fields": list(e.fields), "verdict": e.verdict, "reason": e.reason,
             "channel": e.channel, "shareId": e.share_id, "anonymous": e.anonymous,
             "claimedPurpose": e.claimed_purpose, "ipPrefix": e.ip_prefix, "userAgent": e.user_agent,
             "reportedBy": e.reported_by} for e in entries]  # fmt: skip
