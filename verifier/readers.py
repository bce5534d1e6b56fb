"""Where a verifier's chain facts come from: the index while it is fresh (zero RPC per
verification), else one `eth_call`; every answer says which it used and at which block.

The chain head is polled in the background; if it cannot be read lately, the index cannot be
called fresh. The index then answers what it last knew (source `lastKnown`, with its block and
age) for a batch it has; the `freshness` check keeps that answer's verdict ERROR unless the
node's policy accepts last-known answers of that age, so an outage never gives an old VALID
unasked. A batch the index does not have stays ERROR: a newer block may hold it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from registry.certificate.presentation import Presentation
from registry.chain.client import ChainClient
from registry.contracts.certificate_registry import Inspection, Status
from registry.contracts.trust_registry import NationalKeyInfo
from registry.error_codes import ErrorCode
from registry.errors import ChainError, ChainUnavailable
from registry.indexer import Freshness, History, IndexStale
from verifier.chain_reader import RegistryReader
from verifier.context import ChainFacts, KeyCompromise

log = logging.getLogger(__name__)
ASKED_KEPT = 10_000  # chain answers kept for batches the index does not hold


class HeadTracker:
    """The chain's head block, read every `poll_s` by a daemon thread."""

    def __init__(self, client: ChainClient, *, poll_s: float = 0.5, max_age_s: float = 3.0) -> None:
        self._client = client
        self._poll_s = poll_s
        self._max_age_s = max_age_s
        self._block: int | None = None
        self._read_at = 0.0
        self.read_at_wall: float | None = None  # unix time of the last good read, for last-known ages
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="head-tracker", daemon=True)
        self._poll()
        self._thread.start()

    def _poll(self) -> None:
        try:
            self._block = self._client.block_number()
            self._read_at, self.read_at_wall = time.monotonic(), time.time()
        except ChainError as exc:
            log.warning("chain head unreadable: %s", exc.message)

    def _run(self) -> None:
        while not self._stop.wait(self._poll_s):
            self._poll()

    @property
    def block(self) -> int:
        if self._block is None or time.monotonic() - self._read_at > self._max_age_s:
            raise ChainUnavailable("The chain's head cannot be read: the node is down or unreachable")
        return self._block

    @property
    def last_block(self) -> int | None:
        """The head as last read, however long ago (None if never)."""
        return self._block

    def close(self) -> None:
        self._stop.set()


class IndexReader:
    """Facts from the index when it lags at most `max_lag` blocks, else from the chain."""

    def __init__(self, history: History, chain: RegistryReader, head: HeadTracker, *, max_lag: int) -> None:
        self._history = history
        self._chain = chain
        self._head = head
        self._max_lag = max_lag
        # The chain's answers about batches the index does not hold (another region's, at a
        # regional node): (facts, when asked), oldest first.
        self._asked: OrderedDict[tuple[Any, ...], tuple[ChainFacts, float]] = OrderedDict()
        self._lock = threading.Lock()
        self.chain_id = chain.chain_id
        self.registry = chain.registry

    def freshness(self) -> Freshness:
        """The index against the chain head: `ChainUnavailable` if the head cannot be read lately,
        `IndexStale` if the index lags more than `max_lag` blocks."""
        return self._history.freshness(self._head.block).require(self._max_lag)

    def facts(self, presentation: Presentation, signer: str, at: int | None = None) -> ChainFacts:
        try:
            head = self._head.block
        except ChainUnavailable:
            if at is not None:
                raise
            return self._last_known(presentation, signer)
        try:
            freshness = self._history.freshness(head).require(self._max_lag)
        except IndexStale:
            if at is not None:
                raise
            log.info("index stale: asking the chain")
            return self._chain.facts(presentation, signer)
        p = presentation
        inspection = self._history.facts(
            p.batch_root, p.batch_index, p.digest, list(p.batch_proof), signer, at=at
        )
        if not inspection.anchored and at is not None:
            self._require_held(signer)  # the chain answers only about now
        if not inspection.anchored and at is None:
            # The newest blocks may not be indexed yet, or the batch is another region's (a
            # regional index): the chain answers, and a "yes" is kept for as long as the index
            # itself may lag.
            return self._asked_of_chain(presentation, signer, head)
        return ChainFacts(
            inspection, freshness.indexed_block, "index", lag_blocks=freshness.lag_blocks,
            **index_details(self._history, presentation, signer, inspection, at),
        )  # fmt: skip

    def _require_held(self, signer: str) -> None:
        """A regional index's "not anchored" stands only for a batch of its own regions' agencies."""
        if not self._history.regions:
            return
        agency = self._history.agency_of_key(signer)
        if agency is None or not self._history.holds(agency.region):
            raise ChainError(
                f"This node indexes the batches of regions {', '.join(self._history.regions)} only, and the chain "
                "answers only about now: verify this certificate as of that time at a node of its region",
                code=ErrorCode.INDEX_OUT_OF_SCOPE,
            )

    def _asked_of_chain(self, presentation: Presentation, signer: str, head: int) -> ChainFacts:
        key = _question(presentation, signer)
        with self._lock:
            kept = self._asked.get(key)
            if kept is not None and head - kept[0].block_number <= self._max_lag:
                self._asked.move_to_end(key)
                return kept[0]
        facts = self._chain.facts(presentation, signer)
        if facts.inspection.anchored:  # a "no" is not kept: the batch may be anchored any moment
            with self._lock:
                self._asked[key] = (facts, time.time())
                while len(self._asked) > ASKED_KEPT:
                    self._asked.popitem(last=False)
        return facts

    def _last_known(self, presentation: Presentation, signer: str) -> ChainFacts:
        """What the index last knew (or the chain last said of a batch it does not hold), with the
        chain away: `ChainUnavailable` again for a batch neither has (a newer block may hold it)."""
        p = presentation
        inspection = self._history.facts(p.batch_root, p.batch_index, p.digest, list(p.batch_proof), signer)
        if not inspection.anchored:
            with self._lock:
                kept = self._asked.get(_question(presentation, signer))
            if kept is not None:
                facts, asked_at = kept
                return replace(facts, source="lastKnown", age_s=max(0.0, time.time() - asked_at))
            raise ChainUnavailable(
                "The chain cannot be read and this node's index does not have the batch: try again later"
            )
        indexed = self._history.indexed_block
        return ChainFacts(
            inspection, indexed, "lastKnown", age_s=self.last_known_age_s(indexed),
            **index_details(self._history, presentation, signer, inspection, None),
        )  # fmt: skip

    def last_known_age_s(self, indexed_block: int) -> float:
        """Seconds since the index was last known current: the last good read of the head, if the
        index was within `max_lag` of it; else when the index last moved (a lower bound on its
        age then would be a guess, so it errs old)."""
        now = time.time()
        last_head, read_at = self._head.last_block, self._head.read_at_wall
        if last_head is not None and read_at is not None and last_head - indexed_block <= self._max_lag:
            return max(0.0, now - read_at)
        # The index lagged (or the head was never read): its facts are as old as its block. Not
        # when the indexer wrote it: catching up, it writes old blocks now.
        block_time = self._history.block_time(indexed_block)
        return max(0.0, now - block_time) if block_time is not None else float("inf")

    def national_keys(self, agency_code: str) -> list[NationalKeyInfo]:
        """The agency's SM2 keys (national co-seal) from the index while it is fresh (or the chain
        is away: the `freshness` check judges that answer), else the chain."""
        try:
            self.freshness()
        except IndexStale:
            return self._chain.national_keys(agency_code)
        except ChainUnavailable:
            pass
        return self._history.national_keys(agency_code)


def _question(presentation: Presentation, signer: str) -> tuple[Any, ...]:
    p = presentation
    return (bytes(p.batch_root), p.batch_index, bytes(p.digest), tuple(p.batch_proof), signer.lower())


def index_details(
    history: History, presentation: Presentation, signer: str, inspection: Inspection, at: int | None
) -> dict[str, Any]:
    """What the index knows beyond `inspect`, read only when the answer is not a plain yes: the
    status's GB reason and since-when, and since when a bad key has been known to be bad."""
    details: dict[str, Any] = {}
    if not inspection.anchored:
        return details
    if inspection.status is not Status.ACTIVE:
        status = history.certificate_status_at(presentation.batch_root, presentation.batch_index, at)
        details.update(status_reason=status.reason, status_since=status.since)
    if not (inspection.signer_valid and inspection.anchor_key_valid):
        compromises = []
        for key in dict.fromkeys((inspection.anchor_key, signer)):
            known = history.key_known_bad(key, inspection.anchored_at)
            if known is not None:
                compromises.append(KeyCompromise(key, known[0].compromised_since, known[1]))
        details["compromises"] = tuple(compromises)
    return details
