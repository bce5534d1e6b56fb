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
  node again, 429): its other entries wait for the next pass, and this one is sent again after `retry_base_s` doubled per attempt, capped at
  `retry_max_s`, times a random factor in [0.5, 1) so nodes cut off together do not return
  together; an entry still undelivered `give_up_s` after it was written is failed.

Each origin is sent to in its own lane (a thread of a small pool), the lanes side by side: an
origin slow to answer, or hanging until the timeout, delays no entry owed to another origin.

The claims, back-off and outcomes are `verifier.delivery`'s, shared with the subscribers' webhooks.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx
import orjson
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from verifier.delivery import DELIVERED, FAILED, PENDING, Attempt, Deliveries
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
    """Posts the due entries, each origin in its own lane (see `send_due`)."""

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
        lanes: int = 16,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._sessions = sessions
        self._client = httpx.Client(
            timeout=timeout_s, headers={"Authorization": f"Bearer {node_key or ''}"},
            limits=httpx.Limits(max_connections=lanes * 2, max_keepalive_connections=lanes),
        )  # fmt: skip
        self._deliveries = Deliveries(
            sessions, AccessOutbox, name="access outbox", retry_base_s=retry_base_s, retry_max_s=retry_max_s,
            give_up_s=give_up_s, hold_s=2 * timeout_s + 5, clock=clock, rng=rng,
        )  # fmt: skip
        self._batch_size = batch_size
        self._clock = clock
        self._lanes = ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="access-outbox-lane")
        self._busy: set[str] = set()  # origins a lane is sending to now
        self._lock = threading.Lock()
        self._wake: threading.Event | None = None

    def run(self, stop: threading.Event, wake: threading.Event, poll_s: float = 1.0) -> None:
        """Send due entries until `stop`; a new entry (`wake`) is sent at once, a retry when due.

        Never waits for a lane: an origin slow to answer, or not answering until the timeout,
        holds up only its own entries; a lane done wakes the loop for what is due after it."""
        self._wake = wake
        try:
            while not stop.is_set():
                wake.clear()
                try:
                    self._dispatch(stop)
                except SQLAlchemyError as exc:  # the database away for a moment: the rows wait
                    log.warning("access outbox: %s; trying again", exc.__class__.__name__)
                except Exception:  # never lose the thread
                    log.exception("access outbox: a pass failed")
                wake.wait(poll_s)
        finally:
            self._lanes.shutdown(wait=True)  # each lane stops after the post in flight (`stop`)
            self._client.close()

    def send_due(self, stop: threading.Event | None = None) -> int:
        """One pass over the entries due now, waiting for it to end; how many it settled (sent,
        or failed). Each origin's entries go in their own lane, the lanes side by side: an origin
        that is slow to answer, or never answers (the timeout), holds back no other origin's
        entries (one after the other, each slow answer, or each hanging origin's timeout, held
        back every origin's entries after it). In its lane an origin is sent its entries one at a
        time, at most `batch_size` a pass, and nothing more once it did not answer or answered
        "not now" (5xx, 429, 401/403): a busy origin is not sent its whole backlog at once."""
        return sum(lane.result() for lane in self._dispatch(stop))

    def _dispatch(self, stop: threading.Event | None) -> list[Future[int]]:
        """Start a lane for each origin with entries due and no lane yet (each read skips the
        origins found by the reads before it: an origin with a backlog of more than a batch
        hides no other, and a pass reads at most once per origin, plus one)."""
        now = self._clock()
        started: list[Future[int]] = []
        found: set[str] = set()
        while len(found) < 1000:
            with self._lock:
                skipped = found | self._busy
            with self._sessions() as session:
                due = session.execute(
                    select(AccessOutbox.event_id, AccessOutbox.origin, AccessOutbox.payload,
                           AccessOutbox.attempts, AccessOutbox.created_at)
                    .where(AccessOutbox.state == PENDING, AccessOutbox.next_attempt_at <= now,
                           AccessOutbox.origin.not_in(skipped))
                    .order_by(AccessOutbox.next_attempt_at).limit(self._batch_size)
                ).all()  # fmt: skip
            if not due:
                break
            by_origin: dict[str, list[Any]] = {}
            for row in due:
                by_origin.setdefault(row.origin, []).append(row)
            found |= by_origin.keys()
            for origin, rows in by_origin.items():
                with self._lock:
                    if origin in self._busy:
                        continue
                    self._busy.add(origin)
                try:
                    started.append(self._lanes.submit(self._send_origin, origin, rows, now, stop))
                except RuntimeError:  # shut down meanwhile (the node stopping)
                    with self._lock:
                        self._busy.discard(origin)
                    return started
            if len(due) < self._batch_size:
                break  # every origin with entries due was in that read
        return started

    def _send_origin(
        self, origin: str, rows: list[Any], now: dt.datetime, stop: threading.Event | None
    ) -> int:
        """A lane: `rows` (all of `origin`'s, oldest due first) posted one at a time, until one is
        not taken now. How many were settled."""
        settled = 0
        held_off = False
        try:
            for row in rows:
                if stop is not None and stop.is_set():
                    break
                if self._deliveries.expired(row, now):
                    self._deliveries.settle(
                        row.event_id, Attempt(FAILED, "GAVE_UP: not delivered in time"), row.attempts
                    )
                    settled += 1
                    continue
                if not self._deliveries.take(row.event_id, row.attempts, self._clock()):
                    continue  # another sender on this database has it
                attempt = self._post(origin, row.payload)
                self._deliveries.settle(row.event_id, attempt, row.attempts + 1)
                settled += 1
                if attempt.state == PENDING:
                    held_off = True
                    break  # no answer, or "not now": its other entries wait for the next pass
        finally:
            with self._lock:
                self._busy.discard(origin)
            if self._wake is not None and not held_off:
                self._wake.set()  # what is due after this lane's rows, the loop reads at once
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
