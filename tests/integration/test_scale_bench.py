"""The registry scale benchmark (scripts/bench/scale.py) at a tiny size, on a real anvil and a
real PostgreSQL: every figure is there, the verifications it timed were VALID answers from the
index, and the index holds far fewer rows than certificates."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "bench"))  # the harness lives beside its script

from scale_harness import LATENCY_ROUNDS, carriers, plan, run_scale_bench  # noqa: E402

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def postgres_url() -> str:
    """The suite's PostgreSQL ($ECERT_TEST_POSTGRES_URL), else the local test cluster started."""
    if url := os.environ.get("ECERT_TEST_POSTGRES_URL"):
        return url
    started = subprocess.run(
        [str(ROOT / "scripts" / "postgres.sh")], capture_output=True, text=True, check=True
    )
    return started.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def results(postgres_url: str) -> dict[str, Any]:
    console = Console(file=io.StringIO(), force_terminal=False)
    made = run_scale_bench(
        database_url=postgres_url, certificates=2_000, agencies=5, issue_count=600, issue_rounds=2, samples=40,
        max_batch=1_000, checkpoints=(500, 1_000), console=console,
    )  # fmt: skip
    written: dict[str, Any] = json.loads(json.dumps(made))  # what scale.py writes: plain JSON
    return written


def test_the_plan_reaches_each_checkpoint_exactly() -> None:
    import random

    stages = plan(25_000, (10_000, 1_000_000), random.Random(1), 100_000)
    assert [sum(stage) for stage in stages] == [10_000, 15_000]
    assert all(1 <= size <= 100_000 for stage in stages for size in stage)


def test_carriers_spread_the_samples_over_small_and_big_batches() -> None:
    sizes = [1, 5, 100, 3, 7_000, 2]
    wanted = carriers(sizes, 10)
    assert sum(wanted.values()) == 10
    assert 0 in wanted and 4 in wanted  # the smallest batch and the biggest one
    assert all(wanted[batch] <= sizes[batch] for batch in wanted)


def test_every_checkpoint_has_latency_from_valid_verifications(results: dict[str, Any]) -> None:
    checkpoints = results["checkpoints"]
    assert [c["certificates"] for c in checkpoints] == [500, 1_000, 2_000]
    for checkpoint in checkpoints:
        assert checkpoint["samples"] > 0 and checkpoint["valid"] == checkpoint["samples"]
        assert checkpoint["timings_per_pass"] == LATENCY_ROUNDS * checkpoint["samples"]  # a p99 of many
        assert set(checkpoint["sources"]) == {"index"}  # answered from the index, never the chain
        for way in ("uncached_ms", "cached_ms"):
            assert 0 < checkpoint[way]["p50"] <= checkpoint[way]["p99"] <= checkpoint[way]["max"]
            assert checkpoint[way]["p99"] == min(checkpoint[way]["p99_of_passes"])  # the least disturbed pass
            assert len(checkpoint[way]["p99_of_passes"]) == checkpoint["timed_passes_per_way"]
    for way in ("uncached_ms", "cached_ms"):
        assert results["latency"][way]["p99_ratio"] > 0
        assert set(results["latency"][way]["p99_ms"]) == {"500", "2000"}


def test_the_index_holds_fewer_rows_than_certificates(results: dict[str, Any]) -> None:
    index = results["index"]
    assert index["certificates"] == 2_000
    assert index["bytes"] > 0 and index["tables"]["idx_batches"]["rows"] == results["fill"]["batches"]
    assert 0 < index["rows_per_certificate"] < 1
    assert all(0 < c["index"]["rows_per_certificate"] < 1 for c in results["checkpoints"])


def test_a_regional_index_holds_its_regions_batches_only(results: dict[str, Any]) -> None:
    regional, whole = results["regional_index"], results["index"]
    assert (
        regional["region"] == "330000" and regional["whole_batches"] == whole["tables"]["idx_batches"]["rows"]
    )
    assert regional["batches"] < regional["whole_batches"]  # 5 agencies over 31 provinces: not all in 浙江
    assert 0 < regional["bytes_vs_whole"] <= 1 and regional["batch_rows_vs_whole"] < 1


def test_a_counter_downloads_a_region_and_its_delta(results: dict[str, Any]) -> None:
    snapshots = results["snapshots"]
    assert snapshots["region_batches"] < snapshots["whole_batches"] == results["fill"]["batches"]
    assert snapshots["delta_batches"] <= snapshots["region_batches"]
    assert (
        0 < snapshots["delta_bytes"] < snapshots["whole_bytes"]
        and snapshots["region_bytes"] <= snapshots["whole_bytes"]
    )


def test_fill_and_catch_up_are_measured(results: dict[str, Any]) -> None:
    fill, catch_up = results["fill"], results["catch_up"]
    assert fill["certificates"] == 2_000 and fill["transactions"] == fill["batches"] > 0
    assert fill["batch_size"]["max"] <= 1_000
    assert catch_up["from_block"] == 0 and catch_up["blocks"] == results["checkpoints"][-1]["block"] + 1
    assert (
        catch_up["blocks_per_s"] > 0 and catch_up["certificates_per_s"] > 0 and catch_up["events_per_s"] > 0
    )
    assert catch_up["events"] >= fill["batches"] + results["agencies"]


def test_issuance_end_to_end_and_its_storage(results: dict[str, Any]) -> None:
    issuance = results["issuance"]
    assert issuance["certificates"] == 600 and issuance["certificates_per_s"] > 0
    assert issuance["extrapolated_1m_certificates_s"] > 0
    assert len(issuance["rounds"]) == 2
    steady = issuance["rounds"][-1]["after_vacuum"]
    assert steady["certificates"] == 600 and steady["tables"]["certificates"]["live"] >= 600
    assert steady["dead_tuples"] == issuance["dead_tuples"]
    assert issuance["bytes_per_certificate"] == steady["bytes_per_certificate"] > 0
    # bulk jobs are stored in their batches: certificate rows are written once, only batch rows move
    assert issuance["dead_tuples_before_vacuum"] < issuance["certificates"] // 10
    assert issuance["marginal_bytes_per_certificate"] is not None
    assert issuance["goal_bytes_per_certificate_max"] == 1024


def test_each_figure_says_at_which_size_it_was_measured(results: dict[str, Any]) -> None:
    assert results["measured_at"] == {
        "verification_latency": [500, 1_000, 2_000], "index_size_and_rows": 2_000, "indexer_catch_up": 2_000,
        "issuance_end_to_end_and_issuer_storage": 600,
    }  # fmt: skip


def test_the_machine_and_the_time_are_recorded(results: dict[str, Any]) -> None:
    machine = results["machine"]
    assert machine["cores"] and machine["arch"]
    assert set(machine["speed"]) == {"keccak256_1kib_per_s", "python_loop_per_s"}
    assert results["when"].endswith("+00:00")
