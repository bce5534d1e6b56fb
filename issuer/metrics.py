"""The issuer's own metrics (`registry.metrics` has the shared ones), read at each scrape: the
anchoring queue (certificates stored but not yet anchored: pending a batch, or in a sealed batch
not yet sent) and its lag (the age of the oldest of them), and the chain's head and reachability."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from sqlalchemy import func, select

from issuer.models import Certificate
from issuer.runtime import IssuerRuntime
from registry.database import as_utc
from registry.metrics import ChainProbe, chain_gauges

UNANCHORED = ("pending", "sealed")  # stored, not yet in a transaction on chain


def issuer_gauges(
    runtime: IssuerRuntime, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
) -> Callable[[], Iterator[Metric]]:
    """The scrape-time gauges of the issuer of `runtime`."""
    probe = ChainProbe(lambda: runtime.workspace.client.block_number())  # noqa: PLW0108 - connects when first read

    def collect() -> Iterator[Metric]:
        yield from chain_gauges(probe.head())
        with runtime.sessions() as session:
            depth, first = session.execute(
                select(func.count(), func.min(Certificate.id)).where(Certificate.state.in_(UNANCHORED))
            ).one()
            oldest = (
                None
                if first is None
                else session.scalar(select(Certificate.created_at).where(Certificate.id == first))
            )
        yield GaugeMetricFamily(
            "ecert_issuer_anchoring_queue_certificates",
            "Certificates stored but not yet anchored (pending a batch, or in a sealed batch not yet sent)",
            value=depth,
        )
        lag = 0.0 if oldest is None else max((clock() - as_utc(oldest)).total_seconds(), 0.0)
        yield GaugeMetricFamily(
            "ecert_issuer_anchoring_lag_seconds",
            "Age of the oldest certificate not yet anchored (0 when none waits)",
            value=lag,
        )

    return collect
