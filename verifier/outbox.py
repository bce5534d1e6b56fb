"""The access-log outbox: a verification here of a share kept by another region's node is owed to
that node's access log, where its holder reads it.

`AccessLog` writes the entry to `access_outbox` in the same transaction as this node's own
access-log row, so one is never written without the other. `OutboxSender`, a thread of the node
process, posts each due entry to `<origin>/v1/access-log/remote` with this node's key (the key it
fetched the share with) until the origin answers 2xx; the origin stores an event id once, so an
entry sent twice (an answer lost, two node processes on one database) is still one row there.

- 2xx: delivered.
- A 4xx that would be the same on every try (the share unknown there, an entry it finds
  malformed or of another certificate): failed, with the answer's code, never sent again.
- Anything else (the origin down or timing out, 5xx, 401/403 until its operators trust this
  node again, 429): sent again after `retry_base_s` doubled per attempt, capped at
  `retry_max_s`, times a random factor in [0.5, 1) so nodes cut off together do not return
  together; an entry still undelivered `give_up_s` after it was written is failed.

The claims, back-off and outcomes are `verifier.delivery`'s, shared with the subscribers' webhooks.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import httpx
import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from verifier.delivery import DELIVERED, FAILED, PENDING, Attempt, Deliveries, run_passes
from verifier.models import AccessOutbox

if TYPE_CHECKING:
    from verifier.access_log import Access

log = logging.getLogger(__name__)
PATH = "/v1/access-log/remote"
RETRIED_4XX = frozenset({401, 403, 408, 425, 429})  # may change without this node changing the entry
__all__ = ["DELIVERED", "FAILED", "PENDING", "Attempt", "OutboxSender", "outbox_rows", "payload"]


def outbox_rows(batch: Iterable[Access], now: dt.datetime) -> list[dict[str, Any]]:
    """The outbox rows of the entries in `batch` owed to another node (those with an `origin`):
    due at once. Built without validation: the origin validates, and a refusal fails one entry,
    where an exception here would hold up the whole access log."""
    return [
        {"event_id": a.event_id, "origin": a.origin, "payload": orjson.dumps(payload(a)).decode(),
         "state": PENDING, "attempts": 0, "next_attempt_at": now, "created_at": now}
        for a in batch if a.origin and a.event_id and a.share_token_hash
    ]  # fmt: skip


def payload(a: Access) -> dict[str, Any]:
    """What the origin is told (`verifier.remote_log.RemoteAccess`): the share by its token's
    SHA-256, which is all the origin keeps of the token; never the token."""
    return {
        "eventId": a.event_id, "at": a.at, "organisation": a.organisation, "organisationRegion": a.organisation_region,
        "purpose": a.purpose, "fields": a.fields, "verdict": a.verdict, "reason": a.reason, "channel": a.channel,
        "shareTokenHash": a.share_token_hash, "digest": a.digest, "identifier": a.identifier,
    }  # fmt: skip


class OutboxSender:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        node_key: str | None,
        *,
        retry_base_s: float,
        retry_max_s: float,
        give_up_s: float,
        timeout_s: float = 5.0,
        batch_size: int = 100,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._sessions = sessions
        self._client = httpx.Client(timeout=timeout_s, headers={"Authorization": f"Bearer {node_key or ''}"})
        self._deliveries = Deliveries(
            sessions, AccessOutbox, name="access outbox", retry_base_s=retry_base_s, retry_max_s=retry_max_s,
            give_up_s=give_up_s, hold_s=2 * timeout_s + 5, clock=clock, rng=rng,
        )  # fmt: skip
        self._batch_size = batch_size
        self._clock = clock

    def run(self, stop: threading.Event, wake: threading.Event, poll_s: float = 1.0) -> None:
        """Send due entries until `stop`; a new entry (`wake`) is sent at once, a retry when due."""
        try:
            run_passes("access outbox", self.send_due, self._batch_size, stop, wake, poll_s)
        finally:
            self._client.close()

    def send_due(self, stop: threading.Event | None = None) -> int:
        """One pass over the entries due now (at most `batch_size`); how many it settled (sent,
        or failed), short of the batch when some wait for the next pass: an origin that did not
        answer, or answered "not now" (5xx, 429, 401/403), is sent nothing more in this pass, and
        the entries due after its own are read instead. So an origin down with a backlog holds
        back no other origin's entries (it was one entry a pass, the others behind them all),
        and a busy origin is not sent its whole backlog at once."""
        now = self._clock()
        waiting: set[str] = set()  # origins sent nothing more in this pass
        settled = 0
        while settled < self._batch_size:
            with self._sessions() as session:
                due = session.execute(
                    select(AccessOutbox.event_id, AccessOutbox.origin, AccessOutbox.payload,
                           AccessOutbox.attempts, AccessOutbox.created_at)
                    .where(AccessOutbox.state == PENDING, AccessOutbox.next_attempt_at <= now,
                           AccessOutbox.origin.not_in(waiting))
                    .order_by(AccessOutbox.next_attempt_at).limit(self._batch_size - settled)
                ).all()  # fmt: skip
            for row in due:
                if stop is not None and stop.is_set():
                    return settled
                if row.origin in waiting:
                    continue
                if self._deliveries.expired(row, now):
                    self._deliveries.settle(
                        row.event_id, Attempt(FAILED, "GAVE_UP: not delivered in time"), row.attempts
                    )
                    settled += 1
                    continue
                if not self._deliveries.take(row.event_id, row.attempts, now):
                    continue  # another sender on this database has it
                attempt = self._post(row.origin, row.payload)
                if attempt.state == PENDING:
                    waiting.add(row.origin)
                self._deliveries.settle(row.event_id, attempt, row.attempts + 1)
                settled += 1
            if not any(row.origin in waiting for row in due):
                break  # nothing skipped: that read was all that is due (each read after one
                # skips a further origin, so a pass reads at most once per origin, plus one)
        return settled

    def _post(self, origin: str, body: str) -> Attempt:
        try:
            answer = self._client.post(
                origin + PATH, content=body, headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError as exc:
            return Attempt(PENDING, f"no answer: {exc.__class__.__name__}", unreachable=True)
        if answer.is_success:
            return Attempt(DELIVERED)
        error = f"{answer.status_code} {_code(answer)}".strip()
        if 400 <= answer.status_code < 500 and answer.status_code not in RETRIED_4XX:
            return Attempt(FAILED, error)
        return Attempt(PENDING, error)

    def delay_s(self, attempts: int) -> float:
        """The wait after `attempts` failed attempts: exponential, capped, with jitter."""
        return self._deliveries.delay_s(attempts)


def _code(answer: httpx.Response) -> str:
    """The problem's `code`, if the answer is one."""
    try:
        body = answer.json()
    except ValueError:
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""
