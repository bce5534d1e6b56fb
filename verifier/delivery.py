"""Delivery of rows a node owes someone over HTTP: the access-log entries owed to other regions'
nodes (`verifier.outbox`) and the notifications owed to subscribers (`verifier.webhooks`).

A table of such rows has `event_id` (unique), `state` (pending | delivered | failed),
`attempts`, `next_attempt_at`, `delivered_at` and `last_error`. `Deliveries` is what both
senders share:

- `take`: count the attempt and hold the row for its duration (a conditional UPDATE on its
  attempts: of two senders on one database only one posts it); a sender that dies mid-post
  frees the row when `hold_s` has passed, and the row is posted again (at least once).
- `settle`: delivered, failed for good, or pending again after `delay_s(attempts)`: `retry_base_s`
  doubled per attempt, capped at `retry_max_s`, times a random factor in [0.5, 1) so receivers cut
  off together are not all retried together. A row pending `give_up_s` after its `give_up_from`
  column, or after `max_attempts`, is failed.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

log = logging.getLogger(__name__)
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True)
class Attempt:
    """What one post of a row came to."""

    state: str  # DELIVERED | FAILED | PENDING (to be sent again)
    error: str | None = None
    unreachable: bool = False  # no answer at all: the receiver's other rows wait for the next pass


class Deliveries:
    """Claims, back-off and outcomes of the rows of `model` (see the module's doc)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        model: type[DeclarativeBase],
        *,
        name: str,
        retry_base_s: float,
        retry_max_s: float,
        give_up_s: float,
        hold_s: float,
        max_attempts: int | None = None,
        give_up_from: str = "created_at",
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._sessions, self._model, self.name = sessions, model, name
        self._retry_base_s, self._retry_max_s = retry_base_s, retry_max_s
        self._give_up = dt.timedelta(seconds=give_up_s)
        self._hold = dt.timedelta(seconds=hold_s)
        self._max_attempts = max_attempts
        self._give_up_from = give_up_from
        self.clock, self._rng = clock, rng

    def _column(self, name: str) -> Any:
        return getattr(self._model, name)

    def expired(self, row: Any, now: dt.datetime) -> bool:
        """Whether a due row is past giving up (too old, or out of attempts)."""
        if self._max_attempts is not None and row.attempts >= self._max_attempts:
            return True
        return aware(getattr(row, self._give_up_from)) + self._give_up <= now

    def take(self, event_id: str, attempts: int, now: dt.datetime) -> bool:
        """Count the attempt and hold the row for its duration, if no one else took it first."""
        with self._sessions.begin() as session:
            taken = session.execute(
                update(self._model)
                .where(self._column("event_id") == event_id, self._column("state") == PENDING,
                       self._column("attempts") == attempts)
                .values(attempts=attempts + 1, next_attempt_at=now + self._hold)
                .returning(self._column("event_id"))
            )  # fmt: skip
            return taken.first() is not None

    def settle(self, event_id: str, attempt: Attempt, attempts: int) -> None:
        """Record what attempt number `attempts` came to."""
        now = self.clock()
        if attempt.state == PENDING and self._max_attempts is not None and attempts >= self._max_attempts:
            attempt = Attempt(FAILED, f"GAVE_UP after {attempts} attempts: {attempt.error}")
        values: dict[str, Any] = {
            "state": attempt.state,
            "last_error": attempt.error[:300] if attempt.error else None,
        }
        if attempt.state == DELIVERED:
            values["delivered_at"] = now
        elif attempt.state == PENDING:
            values["next_attempt_at"] = now + dt.timedelta(seconds=self.delay_s(attempts))
            log.info("%s: %s not delivered (%s), attempt %d", self.name, event_id, attempt.error, attempts)
        else:
            log.warning("%s: %s failed for good (%s)", self.name, event_id, attempt.error)
        with self._sessions.begin() as session:
            session.execute(
                update(self._model)
                .where(self._column("event_id") == event_id, self._column("state") == PENDING)
                .values(**values)
            )

    def delay_s(self, attempts: int) -> float:
        """The wait after `attempts` failed attempts: exponential, capped, with jitter."""
        capped = min(self._retry_max_s, self._retry_base_s * 2.0 ** min(max(attempts - 1, 0), 40))
        return capped * (0.5 + self._rng() / 2)


def run_passes(
    name: str,
    send_due: Callable[[threading.Event], int],
    batch_size: int,
    stop: threading.Event,
    wake: threading.Event,
    poll_s: float,
) -> None:
    """Call `send_due` until `stop`: again at once after a full batch, else after `wake` or `poll_s`."""
    while not stop.is_set():
        wake.clear()
        try:
            if send_due(stop) == batch_size:
                continue  # a full batch went out: more may be due
        except SQLAlchemyError as exc:  # the database away for a moment: the rows wait
            log.warning("%s: %s; trying again", name, exc.__class__.__name__)
        except Exception:  # never lose the thread
            log.exception("%s: a pass failed", name)
        wake.wait(poll_s)


def aware(moment: dt.datetime) -> dt.datetime:
    """SQLite gives back naive datetimes for what was stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
