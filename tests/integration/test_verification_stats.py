"""The verifier's aggregated counts for agencies' dashboards (`verifier.api.stats`): an agency's
verifications are those of batch roots the index says it anchored (whatever the case of the hex),
or, without a root, of identifiers naming it as issuer; per CST day, region, verdict and reason. On SQLite and, with ECERT_TEST_POSTGRES_URL, PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from databases import postgres_database

from registry.errors import EcertError
from registry.indexer.store import Batch as IndexedBatch
from registry.settings import Settings
from registry.stats_days import today
from registry.workspace import Workspace
from verifier.api.stats import verification_counts
from verifier.models import AccessEntry
from verifier.runtime import VerifierRuntime
from verifier.settings import VerifierSettings

AGENCY, OTHER = "11330100002493028E", "114401000075021133"
TYPE = "11100000000013338W001"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    admin = os.environ.get("ECERT_TEST_POSTGRES_URL")
    if not admin:
        pytest.skip("ECERT_TEST_POSTGRES_URL is not set: the PostgreSQL run is skipped")
    with postgres_database(admin) as url:
        yield url


def test_counts_per_day_region_verdict_and_reason(tmp_path: Path, database_url: str | None) -> None:
    runtime = VerifierRuntime.open(Workspace(Settings(home=tmp_path / ".ecert")),
                                   VerifierSettings(region="330000", database_url=database_url))  # fmt: skip
    root = bytes(range(32))
    now = dt.datetime.now(dt.UTC)
    with runtime.sessions.begin() as session:
        session.add(IndexedBatch(block_number=1, log_index=0, block_time=0, root=root, agency_code=AGENCY, agency_index=1,
                                 key="0x" + "1" * 40, type_code=TYPE, count=3, anchored_at=0, tx_hash=b"x" * 32))  # fmt: skip

        def entry(region: str, verdict: str, reason: str | None, batch_root: str | None, identifier: str | None = None,
                  at: dt.datetime = now) -> None:  # fmt: skip
            session.add(AccessEntry(at=at, organisation="某银行", organisation_region=region, purpose="开户", digest="0x",
                                    identifier=identifier, fields="[]", verdict=verdict, reason=reason, channel="api",
                                    batch_root=batch_root))  # fmt: skip

        entry("330100", "VALID", None, "0x" + root.hex())
        entry("440100", "INVALID", "CERT_REVOKED", "0x" + root.hex().upper())
        entry("440100", "VALID", None, "0x" + "ff" * 32)  # another agency's batch
        entry(
            "330100", "VALID", None, None, f"1.2.156.3005.2.{TYPE}.{AGENCY}.X1.001.Z"
        )  # no root: by identifier
        entry("330100", "VALID", None, None, f"1.2.156.3005.2.{TYPE}.{OTHER}.X1.001.Z")
        entry("330100", "VALID", None, "0x" + root.hex(), at=now - dt.timedelta(days=40))  # before the period
    try:
        answer = verification_counts(runtime, AGENCY, None, None)
        day = today().isoformat()
        assert answer["rows"] == [
            {"day": day, "region": "330100", "verdict": "VALID", "reason": None, "count": 2},
            {"day": day, "region": "440100", "verdict": "INVALID", "reason": "CERT_REVOKED", "count": 1},
        ]
        assert verification_counts(runtime, OTHER, None, None)["rows"][0]["count"] == 1
        with pytest.raises(EcertError):
            verification_counts(runtime, AGENCY, "2026-02-30", None)
    finally:
        runtime.close()
        runtime.engine.dispose()
