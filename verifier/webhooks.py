"""Webhooks of re-check subscriptions: each notification (`verifier.subscriptions`) is POSTed as
JSON to its subscription's URL until the receiver answers 2xx.

Headers: `X-Ecert-Event-Id` (the notification's id, the same on every attempt),
`X-Ecert-Subscription`, and `X-Ecert-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<body>" under the subscription's secret>` — the secret shown once when subscribing. A
per-subscription HMAC rather than the node's receipt key: the standard webhook check (a few
lines in any language), a secret that proves the call is for this subscriber, and one that a
bank can rotate by subscribing again; `t` lets a receiver refuse a replayed old call.

Delivery is at least once, never exactly once: a receiver that took a notification but whose
2xx never reached the node (the node died mid-post, the answer timed out) gets it again, with
the same event id and body. A receiver that processes an event id once sees each status change
once. A 2xx that reached the node is never followed by a second post of that notification.

Per subscription the notifications go out in the order of the chain: only its oldest pending one
is posted; a later one waits until that is delivered or dead. Retries back off as the access
outbox does (`verifier.delivery`); after `max_attempts`, or `give_up_s` after it was made (or
redelivered), a notification is a dead letter (`GET /v1/subscriptions/{id}/dead-letters`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import threading
from collections.abc import Callable

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from verifier.delivery import DELIVERED, FAILED, PENDING, Attempt, Deliveries, run_passes
from verifier.models import Notification, Subscription
from verifier.subscriptions import Notifier, Subscriptions

log = logging.getLogger(__name__)


def signature(secret: bytes, body: bytes, at: int) -> str:
    """`t=<at>,v1=<hex HMAC-SHA256(secret, "<at>." + body)>`."""
    mac = hmac.new(secret, f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


class WebhookSender:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        subscriptions: Subscriptions,
        notifier: Notifier,
        *,
        retry_base_s: float,
        retry_max_s: float,
        max_attempts: int,
        give_up_s: float,
        timeout_s: float,
        batch_size: int = 100,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._sessions, self._subscriptions, self._notifier = sessions, subscriptions, notifier
        self._client = httpx.Client(timeout=timeout_s, headers={"User-Agent": "ecert-verifier-webhooks/1"})
        self._deliveries = Deliveries(
            sessions, Notification, name="webhooks", retry_base_s=retry_base_s, retry_max_s=retry_max_s,
            give_up_s=give_up_s, hold_s=2 * timeout_s + 5, max_attempts=max_attempts, give_up_from="queued_at",
            clock=clock,
        )  # fmt: skip
        self._batch_size = batch_size
        self._clock = clock

    def run(self, stop: threading.Event, wake: threading.Event, poll_s: float = 0.5) -> None:
        """Each pass: notifications for what was indexed since the last, then the due posts."""
        try:
            run_passes("webhooks", self.pass_once, self._batch_size, stop, wake, poll_s)
        finally:
            self._client.close()

    def pass_once(self, stop: threading.Event | None = None) -> int:
        self._notifier.run_once()
        return self.send_due(stop)

    def send_due(self, stop: threading.Event | None = None) -> int:
        """Post the oldest pending notification of each subscription, if due; how many were settled."""
        now = self._clock()
        heads = (
            select(func.min(Notification.id)).where(Notification.state == PENDING).group_by(Notification.subscription_id)
        )  # fmt: skip
        with self._sessions() as session:
            due = session.execute(
                select(Notification.event_id, Notification.payload, Notification.attempts, Notification.queued_at,
                       Notification.subscription_id, Subscription.url, Subscription.secret)
                .join(Subscription, Subscription.id == Notification.subscription_id)
                .where(Notification.id.in_(heads), Notification.next_attempt_at <= now)
                .order_by(Notification.next_attempt_at).limit(self._batch_size)
            ).all()  # fmt: skip
        unreachable: set[str] = set()
        settled = 0
        for row in due:
            if stop is not None and stop.is_set():
                break
            if row.url in unreachable:
                continue
            if self._deliveries.expired(row, now):
                self._deliveries.settle(
                    row.event_id, Attempt(FAILED, "GAVE_UP: not delivered in time"), row.attempts
                )
                settled += 1
                continue
            if (
                not row.url
                or row.secret is None
                or not self._deliveries.take(row.event_id, row.attempts, now)
            ):
                continue  # another sender on this database has it
            secret = self._subscriptions.secret(row.subscription_id, row.secret)
            attempt = self._post(row.url, row.payload.encode(), row.event_id, row.subscription_id, secret)
            if attempt.unreachable:
                unreachable.add(row.url)
            self._deliveries.settle(row.event_id, attempt, row.attempts + 1)
            settled += 1
        return settled

    def _post(self, url: str, body: bytes, event_id: str, subscription_id: str, secret: bytes) -> Attempt:
        headers = {
            "Content-Type": "application/json",
            "X-Ecert-Event-Id": event_id,
            "X-Ecert-Subscription": subscription_id,
            "X-Ecert-Signature": signature(secret, body, int(self._clock().timestamp())),
        }
        try:
            answer = self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Attempt(PENDING, f"no answer: {exc.__class__.__name__}", unreachable=True)
        if answer.is_success:
            return Attempt(DELIVERED)
        return Attempt(PENDING, f"answered {answer.status_code}")
