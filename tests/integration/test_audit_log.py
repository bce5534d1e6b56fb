"""The staff audit log (issue 12, point 6): hash-chained per agency, verified link by link, its head
anchored on chain. Runs on SQLite and, with ECERT_TEST_POSTGRES_URL, on PostgreSQL.

Tampering is done as an attacker with the database would: SQL straight into the tables."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from databases import postgres_database
from sqlalchemy import Engine, text

from issuer.audit import (
    GENESIS,
    AuditAction,
    AuditAnchorer,
    AuditLog,
    content_bytes,
    entry_hash,
    export_lines,
)
from issuer.db import make_engine, migrate, sessions
from registry.error_codes import ErrorCode
from registry.errors import EcertError

POSTGRES_URL = os.environ.get("ECERT_TEST_POSTGRES_URL")
ZJ = "11330100002493028E"  # the agency of tests/conftest.py's deployment (its key: roles.agency)
GD = "114401000075021133"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not POSTGRES_URL, reason="set ECERT_TEST_POSTGRES_URL to run on PostgreSQL"))])  # fmt: skip
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        made = make_engine(f"sqlite:///{tmp_path / 'issuer.sqlite'}")
        migrate(made)
        yield made
        made.dispose()
        return
    assert POSTGRES_URL is not None
    with postgres_database(POSTGRES_URL) as url:
        made = make_engine(url)
        migrate(made)
        yield made
        made.dispose()


@pytest.fixture
def audit(engine: Engine) -> AuditLog:
    return AuditLog(sessions(engine))


def fill(audit: AuditLog, count: int = 5, agency: str = ZJ) -> None:
    actions = [
        AuditAction.SIGN_IN,
        AuditAction.ISSUE,
        AuditAction.UNMASK,
        AuditAction.APPROVE,
        AuditAction.PRINT,
    ]
    for n in range(count):
        audit.append(
            agency,
            f"clerk{n % 2}",
            actions[n % len(actions)],
            f"cert-{n}",
            {"n": n, "fields": ["holder.name"]},
        )


def sql(engine: Engine, statement: str, **params: Any) -> None:
    with engine.begin() as connection:
        connection.execute(text(statement), params)


def rehash(engine: Engine, agency: str) -> None:
    """What a careful attacker does after changing an entry: recompute every hash after it and the head."""
    with engine.begin() as connection:
        rows = connection.execute(
            text(
                "SELECT id, seq, at, actor, action, subject, details FROM audit_log WHERE agency = :a ORDER BY seq"
            ),
            {"a": agency},
        ).all()
        prev = GENESIS
        for row in rows:
            at = row.at if isinstance(row.at, dt.datetime) else dt.datetime.fromisoformat(row.at)
            content = content_bytes(
                row.seq, at, agency, row.actor, row.action, row.subject, json.loads(row.details)
            )
            digest = entry_hash(prev, content)
            connection.execute(
                text("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE id = :i"),
                {"p": prev, "h": digest, "i": row.id},
            )
            prev = digest
        connection.execute(
            text("UPDATE audit_heads SET hash = :h WHERE agency = :a"), {"h": prev, "a": agency}
        )


# ─── append and verify ───────────────────────────────────────────────────────────────────


def test_entries_chain_from_genesis_and_verify(audit: AuditLog) -> None:
    fill(audit, 5)
    fill(audit, 2, agency=GD)
    entries = list(audit.entries(ZJ))
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(entries))
    assert entries[2].action == "unmask" and entries[2].details == {"fields": ["holder.name"], "n": 2}
    result = audit.verify(ZJ)
    assert result.ok and (result.count, result.head) == (5, entries[-1].hash)
    assert audit.head(ZJ) == (5, entries[-1].hash)
    assert audit.agencies() == sorted([ZJ, GD]) and audit.verify(GD).count == 2


def test_append_refuses_unknown_actions_bad_actors_and_id_numbers(audit: AuditLog) -> None:
    with pytest.raises(EcertError) as caught:
        audit.append(ZJ, "alice", "delete_everything", None, {})
    assert caught.value.code == ErrorCode.AUDIT_ACTION_INVALID
    for actor, subject, details in (
        ("two words", None, {}),
        ("alice", "holder 11010519491231002X", {}),
        ("alice", None, {"holder": {"code": "11010519491231002x"}}),
        ("alice", None, {"n": float("nan")}),
    ):
        with pytest.raises(EcertError) as caught:
            audit.append(ZJ, actor, "unmask", subject, details)
        assert caught.value.code == ErrorCode.AUDIT_ENTRY_INVALID, (actor, subject, details)
    # an agency code, an e-licence identifier or a number with a wrong check character is fine
    audit.append(
        ZJ,
        "api-key:front-desk",
        "issue",
        "11100000000013338W001-11330100002493028E-0001-1",
        {"batch": "110105194912310021"},
    )
    assert audit.verify(ZJ).ok and not list(audit.entries(GD))


def test_export_filters_by_actor_action_and_time(engine: Engine) -> None:
    times = iter(dt.datetime(2026, 12, day, 8, tzinfo=dt.UTC) for day in range(1, 31))
    audit = AuditLog(sessions(engine), clock=lambda: next(times))
    fill(audit, 6)
    assert [e.seq for e in audit.entries(ZJ, actor="clerk1")] == [2, 4, 6]
    assert [e.seq for e in audit.entries(ZJ, action="issue")] == [2]
    since, until = dt.datetime(2026, 12, 2, tzinfo=dt.UTC), dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
    assert [e.seq for e in audit.entries(ZJ, since=since, until=until)] == [2, 3]
    jsonl = [json.loads(line) for line in export_lines(audit.entries(ZJ, actor="clerk0"), "jsonl")]
    assert [(r["seq"], r["at"], r["action"]) for r in jsonl] == [
        (1, "2026-12-01T08:00:00.000000Z", "sign_in"), (3, "2026-12-03T08:00:00.000000Z", "unmask"),
        (5, "2026-12-05T08:00:00.000000Z", "print"),
    ]  # fmt: skip
    lines = list(export_lines(audit.entries(ZJ, action="unmask"), "csv"))
    assert lines[0] == "id,seq,at,agency,actor,action,subject,details,prev_hash,hash\n"
    assert '"{""fields"":[""holder.name""],""n"":2}"' in lines[1] and len(lines) == 2


# ─── tampering ───────────────────────────────────────────────────────────────────────────


def test_a_row_changed_in_the_database_is_the_first_broken_link(engine: Engine, audit: AuditLog) -> None:
    fill(audit, 5)
    third = next(e for e in audit.entries(ZJ) if e.seq == 3)
    sql(engine, "UPDATE audit_log SET details = :d WHERE id = :i", d='{"fields":[],"n":2}', i=third.id)
    broken = audit.verify(ZJ).broken
    assert broken is not None and (broken.id, broken.seq, broken.reason) == (third.id, 3, "hash_mismatch")
    assert f"entry 3 (id {third.id}) was changed" in broken.message


def test_a_changed_row_with_its_own_hash_recomputed_breaks_the_next_link(
    engine: Engine, audit: AuditLog
) -> None:
    fill(audit, 5)
    entries = list(audit.entries(ZJ))
    content = content_bytes(
        2, entries[1].at, ZJ, "mallory", "issue", "cert-1", {"n": 1, "fields": ["holder.name"]}
    )
    sql(engine, "UPDATE audit_log SET actor = 'mallory', hash = :h WHERE id = :i",
        h=entry_hash(entries[0].hash, content), i=entries[1].id)  # fmt: skip
    broken = audit.verify(ZJ).broken
    assert broken is not None and (broken.id, broken.seq, broken.reason) == (
        entries[2].id,
        3,
        "prev_mismatch",
    )


def test_a_deleted_row_is_a_gap(engine: Engine, audit: AuditLog) -> None:
    fill(audit, 5)
    entries = list(audit.entries(ZJ))
    sql(engine, "DELETE FROM audit_log WHERE id = :i", i=entries[2].id)
    broken = audit.verify(ZJ).broken
    assert broken is not None and (broken.seq, broken.reason, broken.id) == (3, "gap", entries[3].id)
    assert "entry 3 is missing before entry 4" in broken.message


def test_deleted_newest_rows_disagree_with_the_head(engine: Engine, audit: AuditLog) -> None:
    fill(audit, 5)
    sql(engine, "DELETE FROM audit_log WHERE agency = :a AND seq >= 4", a=ZJ)
    broken = audit.verify(ZJ).broken
    assert broken is not None and (broken.seq, broken.reason) == (4, "head_mismatch")


def test_a_rehashed_chain_passes_the_links_but_not_a_recorded_anchor(engine: Engine, audit: AuditLog) -> None:
    fill(audit, 5)
    head = audit.head(ZJ)[1]
    sql(engine, "INSERT INTO audit_anchors (agency, seq, head, tx_hash, block_number, anchored_at) "
        "VALUES (:a, 4, :h, :t, 1, :at)", a=ZJ, h=list(audit.entries(ZJ))[3].hash, t="0x" + "ab" * 32,
        at=dt.datetime.now(dt.UTC))  # fmt: skip
    assert audit.verify(ZJ).ok and audit.verify(ZJ).anchors_checked == 1
    sql(engine, "UPDATE audit_log SET subject = 'cert-x' WHERE agency = :a AND seq = 2", a=ZJ)
    rehash(engine, ZJ)
    assert audit.head(ZJ)[1] != head
    broken = audit.verify(ZJ).broken
    assert broken is not None and (broken.seq, broken.reason) == (4, "anchor_mismatch")
    assert "rewritten up to entry 4" in broken.message


# ─── concurrency ─────────────────────────────────────────────────────────────────────────


def test_fifty_parallel_appends_from_two_workers_make_one_chain(engine: Engine) -> None:
    """Two issuer workers (two engines, two pools) appending 25 entries each, all at once, on one
    database: no fork, no gap, no lost entry — the first append of the agency among them."""
    second = make_engine(engine.url.render_as_string(hide_password=False))
    logs = [AuditLog(sessions(engine)), AuditLog(sessions(second))]
    start = threading.Barrier(50)

    def one(n: int) -> int:
        start.wait()
        return logs[n % 2].append(ZJ, f"clerk{n}", "issue", f"cert-{n}", {"n": n}).seq

    try:
        with ThreadPoolExecutor(50) as pool:
            seqs = list(pool.map(one, range(50)))
    finally:
        second.dispose()
    assert sorted(seqs) == list(range(1, 51))
    result = logs[0].verify(ZJ)
    assert result.ok and result.count == 50
    assert sorted(e.details["n"] for e in logs[0].entries(ZJ)) == list(range(50))


# ─── anchoring on a real chain ───────────────────────────────────────────────────────────


@pytest.mark.chain
def test_an_anchored_head_on_chain_catches_a_rehashed_log_whose_anchor_record_was_removed(
    engine: Engine, audit: AuditLog, registry, roles
) -> None:
    fill(audit, 3)
    record = audit.anchor(ZJ, registry, roles.agency)
    assert record is not None and (record.seq, record.head) == audit.head(ZJ)
    assert audit.anchor(ZJ, registry, roles.agency) is None  # the same head: nothing to anchor
    fill(audit, 2)
    on_chain = registry.audit_heads(ZJ)
    assert [(a.count, a.head.hex(), a.tx_hash) for a in on_chain] == [(3, record.head, record.tx_hash)]
    result = audit.verify(ZJ, chain_heads=on_chain)
    assert result.ok and result.anchors_checked == 2 and result.count == 5  # the record and the event

    sql(engine, "UPDATE audit_log SET actor = 'nobody' WHERE agency = :a AND seq = 1", a=ZJ)
    rehash(engine, ZJ)
    sql(engine, "DELETE FROM audit_anchors")
    assert audit.verify(ZJ).ok  # without the chain, a careful rewrite goes unseen…
    broken = audit.verify(ZJ, chain_heads=registry.audit_heads(ZJ)).broken  # …the chain sees it
    assert broken is not None and (broken.seq, broken.reason) == (3, "anchor_mismatch")
    assert record.tx_hash in broken.message


@pytest.mark.chain
def test_the_worker_anchors_a_head_that_moved_once_a_day(audit: AuditLog, registry, roles) -> None:
    now = [dt.datetime(2026, 12, 4, 9, tzinfo=dt.UTC)]
    audit = AuditLog(audit._sessions, clock=lambda: now[0])
    signers = {ZJ: roles.agency}

    def signer_for(code: str):
        from registry.errors import KeystoreError

        if code not in signers:
            raise KeystoreError(f"no key of {code}")
        return signers[code]

    anchorer = AuditAnchorer(
        audit, registry, signer_for, dt.timedelta(hours=24), check_every_s=60, clock=lambda: now[0]
    )
    assert anchorer() == 0  # nothing logged yet
    fill(audit, 2)
    fill(audit, 1, agency=GD)  # not this keystore's agency: skipped
    now[0] += dt.timedelta(seconds=30)
    assert anchorer() == 0  # checked less than a minute ago
    now[0] += dt.timedelta(seconds=31)
    assert anchorer() == 1 and [a.count for a in registry.audit_heads(ZJ)] == [2]  # a first anchor at once
    fill(audit, 1)
    now[0] += dt.timedelta(hours=23)
    assert anchorer() == 0  # moved, but less than a day since the anchor
    now[0] += dt.timedelta(hours=1)
    assert anchorer() == 1 and [a.count for a in registry.audit_heads(ZJ)] == [2, 3]
    now[0] += dt.timedelta(hours=48)
    assert anchorer() == 0  # a day later, but the head did not move
    assert audit.verify(ZJ, chain_heads=registry.audit_heads(ZJ)).anchors_checked == 4


def test_the_anchoring_loop_runs_its_periodic_job_after_each_pass_and_survives_its_failures(
    audit: AuditLog, caplog: pytest.LogCaptureFixture
) -> None:
    from types import SimpleNamespace

    from issuer.anchoring import AnchoringWorker

    worker = AnchoringWorker(audit._sessions, SimpleNamespace(client=None), lambda code: None)  # type: ignore[arg-type]
    stop, calls = threading.Event(), []

    def job() -> None:
        calls.append(1)
        if len(calls) == 3:
            stop.set()
        raise RuntimeError("chain away")

    worker.run_once = lambda flush=False: False  # type: ignore[method-assign]
    worker.after_pass = job
    worker.run_forever(stop, poll_s=0.001)
    assert len(calls) == 3 and "periodic job after an anchoring pass failed" in caplog.text
