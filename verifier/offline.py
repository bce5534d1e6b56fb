"""Verify with no network: chain facts read from a signed trust snapshot (`verifier.snapshot`).

`SnapshotReader` is a `ChainReader`: `verify_presentation(p, SnapshotReader(load_snapshot(path, key)))`
runs the usual pipeline, every chain fact read from the snapshot with `source="snapshot"` at the
snapshot's block. The facts are computed by the indexer's own `History.facts` over the snapshot's
records (the same code that stands in for the contract's `inspect` online), so proof, key
validity at anchor time, agency suspension and status bits follow the contract's exact rules.

What offline cannot know is what happened after the snapshot: a certificate anchored later is
"not anchored" here, and one revoked later still looks active. `explain_offline` says so in
the report, and the caller shows the snapshot's block and age.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from registry.certificate.presentation import Presentation
from registry.contracts.trust_registry import NationalKeyInfo
from registry.error_codes import ErrorCode
from registry.errors import ChainError
from registry.indexer import History
from verifier.checks.base import Outcome
from verifier.context import ChainFacts
from verifier.pipeline import Report
from verifier.snapshot import TrustSnapshot

SOURCE = "snapshot"


class _SnapshotHistory(History):
    """`History` answering from a loaded snapshot instead of a database (it never refreshes)."""

    def __init__(self, snapshot: TrustSnapshot) -> None:  # no engine: nothing to follow
        self.snapshot = snapshot  # type: ignore[assignment]

    def refresh(self) -> bool:
        return False

    def warm(self, count: int | None = None) -> int:
        return len(self.snapshot.batches)  # type: ignore[attr-defined]

    def _view(self):  # type: ignore[no-untyped-def]  # a TrustSnapshot answers what `History` asks of a view
        return self.snapshot


class SnapshotReader:
    """Chain facts from a trust snapshot: `inspect` as the registry answered at the snapshot's block."""

    def __init__(self, snapshot: TrustSnapshot) -> None:
        self.snapshot = snapshot
        self.chain_id = snapshot.chain_id
        self.registry = snapshot.registry
        self._history = _SnapshotHistory(snapshot)

    @property
    def history(self) -> History:
        """The snapshot as an index `History` (status, key standing and agencies of the snapshot)."""
        return self._history

    def facts(self, presentation: Presentation, signer: str, at: int | None = None) -> ChainFacts:
        if at is not None:
            # Status is kept as bits (see verifier.snapshot): the snapshot knows "now" as of its block only.
            raise ChainError(
                "A trust snapshot answers as of its own block only: verifying at another time needs the online index",
                code=ErrorCode.SNAPSHOT_NO_HISTORY,
            )
        p = presentation
        if self.snapshot.batch(p.batch_root) is None:
            self._require_covered(signer)
        inspection = self._history.facts(p.batch_root, p.batch_index, p.digest, list(p.batch_proof), signer)
        return ChainFacts(inspection, self.snapshot.block_number, SOURCE)

    def _require_covered(self, signer: str) -> None:
        """A batch a region's snapshot does not hold is "not anchored" only if its sealer's agency
        is in the snapshot's regions; otherwise the snapshot cannot say."""
        if not self.snapshot.scope:
            return
        key = self.snapshot.trust.keys.get(signer.lower())
        agency = self.snapshot.trust.agencies.get(key.agency_code) if key is not None else None
        if agency is None or not self.snapshot.covers(agency.region):
            whose = (
                "the certificate's key is not in the snapshot (a key added since, or not an agency's)"
                if agency is None
                else f"the certificate's agency {agency.name} is in region {agency.region:06d}"
            )
            raise ChainError(
                f"This trust snapshot holds the batches of regions {', '.join(self.snapshot.scope)} only and "
                f"{whose}: verify online or with a newer snapshot that covers it",
                code=ErrorCode.SNAPSHOT_OUT_OF_SCOPE,
            )

    def national_keys(self, agency_code: str) -> list[NationalKeyInfo]:
        """The agency's SM2 keys in the snapshot, oldest first, with their records at its block
        (a snapshot without national keys, version 1, has none)."""
        return self._history.national_keys(agency_code)


def describe_age(age: dt.timedelta) -> str:
    """`3 h 12 min`, `2 d 4 h`, `< 1 min`."""
    minutes = int(age.total_seconds()) // 60
    if minutes < 1:
        return "< 1 min"
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def offline_summary(snapshot: TrustSnapshot, now: dt.datetime | None = None) -> str:
    """`offline: trust snapshot of block 1234, 3 h 12 min old`."""
    return f"offline: trust snapshot of block {snapshot.block_number}, {describe_age(snapshot.age(now))} old"


def offline_json(snapshot: TrustSnapshot, now: dt.datetime | None = None) -> dict[str, object]:
    """What a JSON report adds when verified offline."""
    return {
        "mode": "offline",
        "source": SOURCE,
        "chainId": snapshot.chain_id,
        "snapshotBlock": snapshot.block_number,
        "snapshotBlockTime": snapshot.block_time,
        "snapshotCreatedAt": snapshot.created_at.astimezone(dt.UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z"),
        "snapshotAgeSeconds": int(snapshot.age(now).total_seconds()),
        "snapshotKeyId": snapshot.key_id,
        "snapshotRegion": snapshot.region,
    }


def explain_offline(report: Report, snapshot: TrustSnapshot) -> Report:
    """The report with "not anchored" explained: the snapshot may be older than the certificate."""
    taken = snapshot.created_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    note = (
        f" (offline: not in the trust snapshot of block {snapshot.block_number}, taken {taken}; the snapshot may be older "
        "than the certificate: verify online or with a newer snapshot)"
    )
    checks = [
        dataclasses.replace(
            c, message=c.message + note, evidence={**c.evidence, "snapshotBlock": snapshot.block_number}
        )
        if c.outcome is Outcome.INVALID and c.code == "NOT_ANCHORED"
        else c
        for c in report.checks
    ]
    return dataclasses.replace(report, checks=checks)
