"""Re-check subscriptions (issue 11, point 12): a bank or agency that verified a certificate here
asks to be told when its status changes on chain, by a signed webhook (`verifier.webhooks`) or
by reading `GET /v1/notifications`.

- Only a certificate the organisation verified at this node: the access log has its digest under
  the organisation's name and region, with the batch root and index the verification read. The
  subscription follows that root and index; a caller never names them, so it cannot follow a
  certificate it never saw.
- `Notifier.run_once` turns the status changes the indexer wrote (`StatusChanged`, `BatchRevoked`)
  after a block cursor into notifications, one per change and subscription: the event id is a
  hash of the subscription, the transaction, the certificate and the new status, and inserting
  it twice does nothing, so a pass repeated (a crash between insert and cursor, two node
  processes, a reorg that re-mines the same transaction) never makes a second one.
- A reorg that rolls the index back moves the cursor back with it; a change that left the chain
  for good stays notified (a notification is never taken back: the next change is told in turn,
  and `index_confirmations` is the defence against telling a change that will not last).
- Events: `suspended`, `reinstated` (active again after a suspension: the certificate renewed),
  `revoked`, `superseded` (revoked with reason 04 注销 because its agency reissued it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import orjson
from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session, sessionmaker

from registry.contracts.certificate_registry import Status
from registry.crypto import DataCipher
from registry.error_codes import ErrorCode
from registry.errors import EcertError, NotAuthorised, NotFound
from registry.indexer.store import BatchRevocation, IndexerState, StatusChange, table
from verifier.db import insert_new
from verifier.delivery import FAILED, PENDING, aware
from verifier.i18n import status_reason
from verifier.models import AccessEntry, Notification, Subscription, SubscriptionCursor
from verifier.orgs import Caller

EVENTS = ("suspended", "reinstated", "revoked", "superseded")
PULL, CANCELLED = "pull", "cancelled"  # notification states beside `verifier.delivery`'s
REASON_SUPERSEDED = 4  # 注销: what an agency's reissue revokes the old certificate with
CURSOR_ID = 1


@dataclass(frozen=True)
class SubscriptionView:
    id: str
    digest: str
    root: str
    index: int
    events: list[str]
    url: str | None
    created_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "certificate": {"digest": self.digest, "root": self.root, "index": self.index},
            "events": self.events, "url": self.url, "createdAt": aware(self.created_at).isoformat(),
        }  # fmt: skip


def _view(row: Subscription) -> SubscriptionView:
    return SubscriptionView(
        row.id, row.digest, row.batch_root, row.batch_index, orjson.loads(row.events), row.url, row.created_at
    )


class Subscriptions:
    """The subscriptions of organisations, each seen and managed only by its own organisation."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        data_key: bytes,
        *,
        allow_http: bool = False,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._sessions = sessions
        self._cipher = DataCipher(data_key)
        self._allow_http = allow_http
        self._clock = clock

    def secret(self, subscription_id: str, sealed: bytes) -> bytes:
        """A webhook's HMAC secret, unsealed (it is kept encrypted with the node's data key)."""
        return self._cipher.decrypt(sealed, subscription_id)

    def create(
        self, who: Caller, digest: str, *, url: str | None, events: Sequence[str] | None, from_block: int
    ) -> tuple[SubscriptionView, str | None]:
        """Subscribe `who` to the certificate it verified as `digest`; with a `url`, the webhook's
        secret is returned (once: only its ciphertext is kept)."""
        if url is not None:
            self._check_url(url)
        wanted = sorted(set(events if events is not None else EVENTS), key=EVENTS.index)
        with self._sessions() as session:
            seen = session.execute(
                select(AccessEntry.batch_root, AccessEntry.batch_index)
                .where(AccessEntry.digest == digest, AccessEntry.organisation == who.name,
                       AccessEntry.organisation_region == who.region, AccessEntry.batch_root.is_not(None),
                       AccessEntry.batch_index.is_not(None))
                .order_by(AccessEntry.id.desc()).limit(1)
            ).first()  # fmt: skip
        if seen is None:
            raise NotAuthorised(
                f"{who.name} never verified the certificate {digest} at this node: verify it first, then subscribe",
                code=ErrorCode.SUBSCRIPTION_UNVERIFIED, field="digest",
            )  # fmt: skip
        subscription_id = uuid.uuid4().hex
        secret = "whsec_" + secrets.token_urlsafe(32) if url is not None else None
        row = Subscription(
            id=subscription_id, organisation_id=who.organisation_id, digest=digest, batch_root=seen[0],
            batch_index=seen[1], events=orjson.dumps(wanted).decode(), url=url, from_block=from_block,
            secret=self._cipher.encrypt(secret.encode(), subscription_id) if secret else None,
            created_at=self._clock(),
        )  # fmt: skip
        with self._sessions.begin() as session:
            session.add(row)
            session.flush()
            view = _view(row)
        return view, secret

    def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        schemes = ("https", "http") if self._allow_http else ("https",)
        if (
            len(url) > 500
            or parts.scheme not in schemes
            or not parts.hostname
            or parts.username
            or parts.password
        ):
            raise EcertError(
                "A webhook URL is https://host/path (no credentials in it, at most 500 characters)",
                code=ErrorCode.WEBHOOK_URL_INVALID, field="url",
            )  # fmt: skip

    def _own(self, session: Session, organisation_id: int, subscription_id: str) -> Subscription:
        row = session.get(Subscription, subscription_id)
        if row is None or row.organisation_id != organisation_id or row.cancelled_at is not None:
            raise NotFound(
                f"No subscription {subscription_id} of yours", code=ErrorCode.SUBSCRIPTION_NOT_FOUND
            )
        return row

    def get(self, organisation_id: int, subscription_id: str) -> SubscriptionView:
        with self._sessions() as session:
            return _view(self._own(session, organisation_id, subscription_id))

    def of(self, organisation_id: int) -> list[SubscriptionView]:
        with self._sessions() as session:
            rows = session.scalars(
                select(Subscription)
                .where(Subscription.organisation_id == organisation_id, Subscription.cancelled_at.is_(None))
                .order_by(Subscription.created_at, Subscription.id)
            ).all()
            return [_view(r) for r in rows]

    def cancel(self, organisation_id: int, subscription_id: str) -> SubscriptionView:
        """Unsubscribe: nothing more is made or sent for it (its pending notifications are cancelled)."""
        with self._sessions.begin() as session:
            row = self._own(session, organisation_id, subscription_id)
            row.cancelled_at = self._clock()
            view = _view(row)
            session.execute(
                update(Notification)
                .where(Notification.subscription_id == subscription_id, Notification.state == PENDING)
                .values(state=CANCELLED)
            )
        return view

    def notifications(self, organisation_id: int, after: int, limit: int) -> list[dict[str, Any]]:
        """The organisation's notifications made after the cursor `after`, oldest first."""
        with self._sessions() as session:
            rows = session.execute(
                select(Notification.id, Notification.payload, Notification.state, Notification.attempts)
                .where(Notification.organisation_id == organisation_id, Notification.id > after)
                .order_by(Notification.id).limit(limit)
            ).all()  # fmt: skip
        return [
            {
                **orjson.loads(r.payload),
                "cursor": str(r.id),
                "delivery": {"state": r.state, "attempts": r.attempts},
            }
            for r in rows
        ]

    def dead_letters(self, organisation_id: int, subscription_id: str) -> list[dict[str, Any]]:
        """The subscription's notifications its webhook never took (failed after the retries)."""
        with self._sessions() as session:
            self._own(session, organisation_id, subscription_id)
            rows = session.scalars(
                select(Notification)
                .where(Notification.subscription_id == subscription_id, Notification.state == FAILED)
                .order_by(Notification.id)
            ).all()
            return [
                {"eventId": r.event_id, "attempts": r.attempts, "lastError": r.last_error,
                 "notification": orjson.loads(r.payload)}
                for r in rows
            ]  # fmt: skip

    def redeliver(self, organisation_id: int, subscription_id: str, event_id: str) -> None:
        """Send a dead letter again, with a fresh round of attempts."""
        now = self._clock()
        with self._sessions.begin() as session:
            self._own(session, organisation_id, subscription_id)
            moved = session.execute(
                update(Notification)
                .where(Notification.subscription_id == subscription_id, Notification.event_id == event_id,
                       Notification.state == FAILED)
                .values(state=PENDING, attempts=0, next_attempt_at=now, queued_at=now, last_error=None)
                .returning(Notification.id)
            ).first()  # fmt: skip
        if moved is None:
            raise NotFound(
                f"No dead letter {event_id} of this subscription", code=ErrorCode.NOTIFICATION_NOT_FOUND
            )


@dataclass(frozen=True)
class _Change:
    """A status change read from the index: of the batch `root`, for the indexes in `covers`."""

    block_number: int
    log_index: int
    block_time: int
    root: bytes
    covers: Callable[[int], bool]
    status: Status
    reason: int
    tx_hash: bytes


def _changes(session: Session, after: int, upto: int) -> list[_Change]:
    """The indexed status changes of blocks `after+1..upto`, in chain order."""
    changes, revocations = table(StatusChange), table(BatchRevocation)
    found = [
        _Change(r.block_number, r.log_index, r.block_time, r.root, _in_word(r.word, int.from_bytes(r.mask, "big")),
                Status(r.status), r.reason, r.tx_hash)
        for r in session.execute(
            select(changes).where(changes.c.block_number > after, changes.c.block_number <= upto)
        ).all()
    ]  # fmt: skip
    found += [
        _Change(r.block_number, r.log_index, r.block_time, r.root, _whole_batch, Status.REVOKED, r.reason, r.tx_hash)
        for r in session.execute(
            select(revocations).where(revocations.c.block_number > after, revocations.c.block_number <= upto)
        ).all()
    ]  # fmt: skip
    return sorted(found, key=lambda c: (c.block_number, c.log_index))


def _in_word(word: int, mask: int) -> Callable[[int], bool]:
    """Whether a `StatusChanged(word, mask)` covers the certificate at an index: bit `i % 256` of
    the mask, in word `i // 256`."""
    return lambda index: index // 256 == word and bool(mask >> (index % 256) & 1)


def _whole_batch(_index: int) -> bool:
    return True


def event_of(change: _Change) -> str:
    if change.status == Status.ACTIVE:
        return "reinstated"
    if change.status == Status.SUSPENDED:
        return "suspended"
    return "superseded" if change.reason == REASON_SUPERSEDED else "revoked"


class Notifier:
    """Makes the notifications of the indexed status changes (see the module's doc)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        region: str,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._sessions, self._region, self._clock = sessions, region, clock

    def run_once(self) -> int:
        """One pass: how many notifications were new."""
        with self._sessions.begin() as session:
            indexed = session.scalar(
                select(table(IndexerState).c.block_number).where(table(IndexerState).c.id == 1)
            )
            if indexed is None:
                return 0
            cursor = session.get(SubscriptionCursor, CURSOR_ID)
            if cursor is None:
                oldest = session.scalar(
                    select(Subscription.from_block).where(Subscription.cancelled_at.is_(None))
                    .order_by(Subscription.from_block).limit(1)
                )  # fmt: skip
                start = indexed if oldest is None else min(indexed, oldest)
                dialect = session.get_bind().dialect.name
                session.execute(
                    insert_new(SubscriptionCursor, dialect, ["id"]),
                    [{"id": CURSOR_ID, "block_number": start}],
                )
                return 0
            after = cursor.block_number
            if indexed <= after:  # nothing new, or a reorg rolled the index back below the cursor
                cursor.block_number = indexed
                return 0
            made = self._notify(session, _changes(session, after, indexed))
            moved = cast("CursorResult[Any]", session.execute(
                update(SubscriptionCursor)
                .where(SubscriptionCursor.id == CURSOR_ID, SubscriptionCursor.block_number == after)
                .values(block_number=indexed)
            )).rowcount  # fmt: skip
            if moved != 1:  # another process moved it meanwhile: its pass made the same rows
                session.rollback()
                return 0
            return made

    def _notify(self, session: Session, changes: list[_Change]) -> int:
        if not changes:
            return 0
        roots = {"0x" + c.root.hex() for c in changes}
        subscriptions = session.scalars(
            select(Subscription).where(
                Subscription.batch_root.in_(roots), Subscription.cancelled_at.is_(None)
            )
        ).all()
        now = self._clock()
        rows: list[dict[str, Any]] = []
        for change in changes:
            root, event = "0x" + change.root.hex(), event_of(change)
            for sub in subscriptions:
                if (sub.batch_root != root or not change.covers(sub.batch_index) or change.block_number <= sub.from_block
                        or event not in orjson.loads(sub.events)):  # fmt: skip
                    continue
                event_id = hashlib.sha256(
                    f"{sub.id}:{change.tx_hash.hex()}:{sub.batch_index}:{int(change.status)}".encode()
                ).hexdigest()[:32]
                rows.append({
                    "event_id": event_id, "subscription_id": sub.id, "organisation_id": sub.organisation_id,
                    "payload": orjson.dumps(self._payload(event_id, event, sub, change)).decode(),
                    "state": PENDING if sub.url else PULL, "attempts": 0, "next_attempt_at": now,
                    "created_at": now, "queued_at": now,
                })  # fmt: skip
        if not rows:
            return 0
        dialect = session.get_bind().dialect.name
        new = session.execute(
            insert_new(Notification, dialect, ["event_id"]).returning(Notification.id), rows
        )
        return len(new.all())

    def _payload(self, event_id: str, event: str, sub: Subscription, change: _Change) -> dict[str, Any]:
        words = status_reason(change.reason)
        return {
            "eventId": event_id, "event": event, "subscriptionId": sub.id,
            "certificate": {"digest": sub.digest, "root": sub.batch_root, "index": sub.batch_index},
            "status": change.status.name.lower(), "reason": f"{change.reason:02d}", "reasonZh": words["zh"],
            "reasonEn": words["en"], "block": change.block_number,
            "blockTime": dt.datetime.fromtimestamp(change.block_time, dt.UTC).isoformat(),
            "txHash": "0x" + change.tx_hash.hex(), "node": {"region": self._region},
        }  # fmt: skip
