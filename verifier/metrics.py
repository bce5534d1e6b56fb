"""The verifier node's own metrics (`registry.metrics` has the shared ones): verifications by
verdict and channel, counted by `VerificationService.verify`; and, read at each scrape, the
chain's head and reachability and the index's lag behind it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import Counter
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from registry.metrics import ChainProbe, chain_gauges

if TYPE_CHECKING:
    from verifier.runtime import VerifierRuntime

VERIFICATIONS = Counter(
    "ecert_verifier_verifications",
    "Verifications made, by verdict (VALID, INVALID, ERROR) and channel (api, qr, link, desk, …)",
    ["verdict", "channel"],
    registry=None,
)
_children: dict[tuple[str, str], Counter] = {}


def count_verification(verdict: str, channel: str) -> None:
    """One more verification of `verdict` by `channel` (the children are cached: one dict lookup)."""
    child = _children.get((verdict, channel))
    if child is None:
        child = _children[verdict, channel] = VERIFICATIONS.labels(verdict, channel)
    child.inc()


def node_gauges(runtime: VerifierRuntime) -> Callable[[], Iterator[Metric]]:
    """The scrape-time gauges of the node of `runtime`: its chain (`chain_gauges`), its indexed
    block and its lag behind the head (blocks)."""
    probe = ChainProbe(lambda: runtime.head.block)  # the head tracker's thread reads the chain

    def collect() -> Iterator[Metric]:
        head = probe.head()
        yield from chain_gauges(head)
        runtime.history.refresh()
        indexed = runtime.history.indexed_block
        yield GaugeMetricFamily(
            "ecert_verifier_indexed_block", "The last block the index holds", value=indexed
        )
        if head is not None:
            yield GaugeMetricFamily(
                "ecert_verifier_index_lag_blocks",
                "Blocks the index is behind the chain's head (head − indexed block)",
                value=max(head - indexed, 0),
            )

    return collect
