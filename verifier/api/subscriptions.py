"""Re-check subscriptions, for banks and agencies: be told when a certificate verified here is
suspended, reinstated, revoked or superseded — by a signed webhook, or by reading the
notifications (`verifier/subscriptions.py`, `verifier/webhooks.py`)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from registry.error_codes import ErrorCode
from registry.errors import EcertError
from verifier.api.deps import Runtime, SubscriberDep
from verifier.api.openapi import API_KEY, answers

router = APIRouter(prefix="/v1", tags=["subscriptions"])
Event = Literal["suspended", "reinstated", "revoked", "superseded"]
S403 = "Only a bank's or an agency's key may subscribe (`SCOPE_MISSING`)"
S404 = "No such subscription of yours (`SUBSCRIPTION_NOT_FOUND`)"


class SubscriptionRequest(BaseModel):
    digest: str = Field(
        ..., pattern=r"^0x[0-9a-fA-F]{64}$",
        description="The certificate's digest, as this organisation's verification report gave it (integrity check)",
    )  # fmt: skip
    url: str | None = Field(
        None, max_length=500, description="An https:// webhook; without one, read GET /v1/notifications"
    )
    events: list[Event] | None = Field(None, min_length=1, description="Default: all four")


class CertificateOut(BaseModel):
    digest: str
    root: str = Field(..., description="The batch root (0x hex) the verification read")
    index: int = Field(..., description="The certificate's index in that batch")


class SubscriptionOut(BaseModel):
    id: str
    certificate: CertificateOut
    events: list[Event]
    url: str | None = Field(None, description="The webhook; None: read GET /v1/notifications")
    createdAt: str
    secret: str | None = Field(
        None, description="Only when subscribing with a url: the webhook's HMAC secret, shown this once"
    )


class NotificationOut(BaseModel):
    eventId: str = Field(..., description="The same on every post of it (X-Ecert-Event-Id): act on it once")
    event: Event
    subscriptionId: str
    certificate: CertificateOut
    status: Literal["active", "suspended", "revoked"]
    reason: str = Field(..., description="GB status reason code (01, 02, 03, 04, 07, 99)")
    reasonZh: str
    reasonEn: str
    block: int
    blockTime: str
    txHash: str
    node: dict[str, str]


class DeliveryOut(BaseModel):
    state: Literal["pending", "delivered", "failed", "pull", "cancelled"]
    attempts: int


class PulledOut(NotificationOut):
    cursor: str
    delivery: DeliveryOut


class NotificationsOut(BaseModel):
    items: list[PulledOut]
    next: str = Field(..., description="The cursor (`after`) of the next page")


class DeadLetterOut(BaseModel):
    eventId: str
    attempts: int
    lastError: str | None
    notification: NotificationOut


class RedeliveryOut(BaseModel):
    eventId: str
    state: Literal["pending"]


@router.post(
    "/subscriptions", status_code=201, summary="Subscribe to a certificate this organisation verified (banks, agencies)",
    response_model=None, openapi_extra=API_KEY,
    responses={201: {"model": SubscriptionOut, "description": "The subscription; with a `url`, its webhook `secret` (shown once)"},
               **answers(400, 401, 403, 422, 429, 503, s403=S403 + ", or a certificate you never verified here "
                         "(`SUBSCRIPTION_UNVERIFIED`)")},
)  # fmt: skip
def subscribe(body: SubscriptionRequest, rt: Runtime, who: SubscriberDep) -> dict[str, Any]:
    rt.access_log.entries(
        digests=[body.digest], limit=1
    )  # the log written so far, this verification's included
    view, secret = rt.subscriptions.create(
        who, body.digest.lower(), url=body.url, events=body.events, from_block=rt.history.indexed_block
    )
    return {**view.to_json(), **({"secret": secret} if secret else {})}


@router.get(
    "/subscriptions", summary="This organisation's subscriptions", response_model=None, openapi_extra=API_KEY,
    responses={200: {"model": list[SubscriptionOut], "description": "Yours, oldest first (no secrets)"},
               **answers(401, 403, 422, 429, 503, s403=S403)},
)  # fmt: skip
def subscriptions(rt: Runtime, who: SubscriberDep) -> list[dict[str, Any]]:
    return [s.to_json() for s in rt.subscriptions.of(who.organisation_id)]


@router.get(
    "/subscriptions/{subscription_id}", summary="One of this organisation's subscriptions", response_model=None,
    openapi_extra=API_KEY,
    responses={200: {"model": SubscriptionOut, "description": "The subscription (no secret)"},
               **answers(401, 403, 404, 422, 429, 503, s403=S403, s404=S404)},
)  # fmt: skip
def subscription(rt: Runtime, who: SubscriberDep, subscription_id: str) -> dict[str, Any]:
    return rt.subscriptions.get(who.organisation_id, subscription_id).to_json()


@router.delete(
    "/subscriptions/{subscription_id}", summary="Unsubscribe", response_model=None, openapi_extra=API_KEY,
    responses={200: {"model": SubscriptionOut, "description": "The subscription, ended: nothing more is sent for it"},
               **answers(401, 403, 404, 422, 429, 503, s403=S403, s404=S404)},
)  # fmt: skip
def unsubscribe(rt: Runtime, who: SubscriberDep, subscription_id: str) -> dict[str, Any]:
    return rt.subscriptions.cancel(who.organisation_id, subscription_id).to_json()


@router.get(
    "/subscriptions/{subscription_id}/dead-letters", summary="Notifications the webhook never took, after every retry",
    response_model=None, openapi_extra=API_KEY,
    responses={200: {"model": list[DeadLetterOut], "description": "The dead letters, oldest first"},
               **answers(401, 403, 404, 422, 429, 503, s403=S403, s404=S404)},
)  # fmt: skip
def dead_letters(rt: Runtime, who: SubscriberDep, subscription_id: str) -> list[dict[str, Any]]:
    return rt.subscriptions.dead_letters(who.organisation_id, subscription_id)


@router.post(
    "/subscriptions/{subscription_id}/dead-letters/{event_id}/redeliver",
    summary="Post a dead letter again, with a fresh round of retries", response_model=None, openapi_extra=API_KEY,
    responses={200: {"model": RedeliveryOut, "description": "Queued again: posted at once"},
               **answers(401, 403, 404, 422, 429, 503, s403=S403,
                         s404="No such subscription of yours, or no such dead letter of it (`NOTIFICATION_NOT_FOUND`)")},
)  # fmt: skip
def redeliver(rt: Runtime, who: SubscriberDep, subscription_id: str, event_id: str) -> dict[str, Any]:
    rt.subscriptions.redeliver(who.organisation_id, subscription_id, event_id)
    return {"eventId": event_id, "state": "pending"}


@router.get(
    "/notifications", summary="This organisation's notifications after a cursor, oldest first (banks without a webhook)",
    response_model=None, openapi_extra=API_KEY,
    responses={200: {"model": NotificationsOut, "description": "A page; `next` is the cursor of the following one"},
               **answers(401, 403, 422, 429, 503, s403=S403, s422="Invalid cursor (`CURSOR_INVALID`) or limit")},
)  # fmt: skip
def notifications(
    rt: Runtime,
    who: SubscriberDep,
    after: str = Query("0", max_length=20, description="The `next` of the previous page; 0 from the start"),
    limit: int = Query(100, ge=1, le=500),
) -> dict[str, Any]:
    if not (after.isascii() and after.isdigit()):
        raise EcertError(
            "The cursor is the `next` of a previous page", code=ErrorCode.CURSOR_INVALID, field="after"
        )
    items = rt.subscriptions.notifications(who.organisation_id, int(after), limit)
    return {"items": items, "next": items[-1]["cursor"] if items else after}
