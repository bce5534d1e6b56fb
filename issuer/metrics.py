"""The issuer's own metrics (`registry.metrics` has the shared ones), read at each scrape: the
anchoring queue (certificates stored but not yet anchored: pending a batch, or in a sealed batch
not yet sent) and its lag (the age of the oldest of them), and the chain's head and reachability."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from sqlalchemy import func, select

from issuer.models import Batch, Certificate
from issuer.runtime import IssuerRuntime
from registry.database import as_utc
from registry.metrics import ChainProbe, chain_gauges

UNANCHORED_BATCHES = ("sealed", "sending")  # cut, not yet in a mined transaction


def issuer_gauges(
    runtime: IssuerRuntime, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
) -> Callable[[], Iterator[Metric]]:
    """The scrape-time gauges of the issuer of `runtime`."""
    probe = ChainProbe(lambda: runtime.workspace.client.block_number())  # noqa: PLW0108 - connects when first read

    def collect() -> Iterator[Metric]:
        yield from chain_gauges(probe.head())
        with runtime.sessions() as session:
            pending, first_pending = session.execute(
                select(func.count(), func.min(Certificate.id)).where(Certificate.intake_state == "pending")
            ).one()
            batched, first_batch = session.execute(
                select(func.sum(Batch.count), func.min(Batch.id)).where(Batch.state.in_(UNANCHORED_BATCHES))
            ).one()
            depth = pending + (batched or 0)
            first_batched = (
                None
                if first_batch is None
                else session.scalar(
                    select(func.min(Certificate.id)).where(Certificate.batch_id == first_batch)
                )
            )
            first = min((i for i in (first_pending, first_batched) if i is not None), default=None)
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
