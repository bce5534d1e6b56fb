"""The dashboard's database figures (`issuer.dashboard.build`) on SQLite and, with
ECERT_TEST_POSTGRES_URL, on PostgreSQL: the rows written here by hand, at known times around a
CST midnight, are counted on the day they belong to, per type, with their anchoring lag; a
verifier's rows are split into same and other provinces; sources that are down say so."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from databases import postgres_database
from sqlalchemy.orm import Session, sessionmaker

from issuer.api.console_dashboard import scope_of
from issuer.corrections import open_by_deadline
from issuer.dashboard import Scope, SourceUnavailable, build, set_correction_source
from issuer.db import make_engine, migrate, sessions
from issuer.models import Agency, Batch, Certificate, Job
from issuer.staff import Role, SignedInStaff, StaffView
from registry.stats_days import today

AGENCY, OTHER = "11330100002493028E", "114401000075021133"
T1, T2 = "11100000000013338W001", "11100000000013338W002"
CST_MIDNIGHT = dt.datetime(2026, 12, 3, 16, 0, tzinfo=dt.UTC)  # 2026-12-04 00:00 in Beijing


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    if request.param == "postgres":
        admin = os.environ.get("ECERT_TEST_POSTGRES_URL")
        if not admin:
            pytest.skip("ECERT_TEST_POSTGRES_URL is not set: the PostgreSQL run is skipped")
        with postgres_database(admin) as url:
            engine = make_engine(url)
            migrate(engine)
            yield sessions(engine)
            engine.dispose()
    else:
        engine = make_engine(f"sqlite:///{tmp_path / 'issuer.sqlite'}")
        migrate(engine)
        yield sessions(engine)
        engine.dispose()


def _seed(made: sessionmaker[Session]) -> None:
    second = dt.timedelta(seconds=1)
    with made.begin() as session:
        session.add_all([Agency(code=AGENCY, name="杭州市市场监督管理局", region="330100"),
                         Agency(code=OTHER, name="广州市市场监督管理局", region="440100")])  # fmt: skip
        session.flush()
        session.add_all([Job(id="j1", agency_code=AGENCY, type_code=T1, request_hash="h", total=4),
                         Job(id="j2", agency_code=OTHER, type_code=T1, request_hash="h", total=1)])  # fmt: skip
        session.flush()
        batch = Batch(agency_code=AGENCY, type_code=T1, root=b"\x01" * 32, count=2, state="confirmed",
                      tx_hash="0x" + "ab" * 32, block_number=5, confirmed_at=CST_MIDNIGHT + 30 * second)  # fmt: skip
        session.add(batch)
        session.flush()
        rows: list[tuple[str, str, str, dt.datetime, int | None]] = [
            ("a1", AGENCY, T1, CST_MIDNIGHT - second, batch.id),  # 12-03 in Beijing, confirmed 31 s later
            ("a2", AGENCY, T1, CST_MIDNIGHT + 10 * second, batch.id),  # 12-04, confirmed 20 s later
            ("a3", AGENCY, T2, CST_MIDNIGHT + 20 * second, None),
            ("a4", AGENCY, T1, CST_MIDNIGHT - dt.timedelta(days=3), None),  # before the period
            ("b1", OTHER, T1, CST_MIDNIGHT + second, None),  # another agency
        ]
        for i, (ident, agency, type_code, created, batch_id) in enumerate(rows):
            session.add(Certificate(identifier=ident, agency_code=agency, type_code=type_code,
                                    job_id="j1" if agency == AGENCY else "j2", position=i + 1, sealed_fields=b"x",
                                    digest=b"\0" * 32, batch_id=batch_id, created_at=created))  # fmt: skip


def _rows(panel: Any) -> dict[str, list[Any]]:
    return {row[0]: row[1:] for row in panel.rows}


def test_the_figures_count_each_row_on_its_beijing_day(database: sessionmaker[Session]) -> None:
    _seed(database)

    def verifier(agency: str, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
        assert (agency, first, last) == (AGENCY, dt.date(2026, 12, 3), dt.date(2026, 12, 4))
        return [{"day": "2026-12-04", "region": "330100", "verdict": "VALID", "reason": None, "count": 3},
                {"day": "2026-12-04", "region": "440300", "verdict": "INVALID", "reason": "CERT_REVOKED", "count": 1}]  # fmt: skip

    with database() as session:
        scope = Scope.for_agency(session, AGENCY)
        assert Scope.for_region(session, "330000").agencies == (AGENCY,)
    figures = build(database, scope, dt.date(2026, 12, 3), dt.date(2026, 12, 4), verifier=verifier)
    issued = figures.panels["issued"]
    assert issued.columns == ["day", T1, T2, "total"]
    assert _rows(issued) == {"2026-12-03": [1, 0, 1], "2026-12-04": [1, 1, 2]}
    lag = _rows(figures.panels["lag"])
    assert lag["2026-12-03"] == [0, 0, None, None]
    assert lag["2026-12-04"] == [1, 2, 25.5, 31.0]  # mean of 31 s and 20 s; the longest 31 s
    assert _rows(figures.panels["verifications"])["2026-12-04"] == [3, 1, 4, 25.0]
    assert figures.panels["regions"].rows == [["330100", "no", 3], ["440300", "yes", 1]]
    assert figures.panels["failures"].rows == [["CERT_REVOKED", "INVALID", 1]]
    assert figures.panels["gas"].note == figures.panels["status"].note == "dash_chain_down"
    assert figures.panels["corrections"].rows == [["overdue", 0], ["due_24h", 0], ["later", 0]]  # none open
    assert figures.panels["lag"].csv().splitlines()[2] == "2026-12-04,1,2,25.5,31.0"


def test_a_verifier_that_is_down_makes_its_panels_say_so(database: sessionmaker[Session]) -> None:
    _seed(database)

    def down(_agency: str, _first: dt.date, _last: dt.date) -> list[dict[str, Any]]:
        raise SourceUnavailable("dash_verifier_down")

    with database() as session:
        scope = Scope.for_agency(session, AGENCY)
    figures = build(database, scope, dt.date(2026, 12, 4), dt.date(2026, 12, 4), verifier=down)
    assert {figures.panels[k].note for k in ("verifications", "regions", "failures")} == {
        "dash_verifier_down"
    }
    assert figures.panels["issued"].available and figures.health["verifier"] == {"configured": False}


def test_correction_requests_show_once_a_source_is_registered(database: sessionmaker[Session]) -> None:
    _seed(database)
    with database() as session:
        scope = Scope.for_agency(session, AGENCY)
    set_correction_source(None)
    try:
        assert build(database, scope, dt.date(2026, 12, 4), dt.date(2026, 12, 4)).panels[
            "corrections"
        ].note == ("dash_corrections_none")  # no source: not available
        set_correction_source(lambda _session, agencies, _today: [["overdue", len(agencies)], ["later", 4]])
        figures = build(database, scope, dt.date(2026, 12, 4), dt.date(2026, 12, 4))
    finally:
        set_correction_source(open_by_deadline)  # issuer.corrections' own, registered at its import
    assert figures.panels["corrections"].available
    assert figures.panels["corrections"].rows == [["overdue", 1], ["later", 4]]


def test_the_cli_prints_a_region_s_figures_and_a_panel_s_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer
    from typer.testing import CliRunner

    from issuer.cli_dashboard import register
    from registry.chain.runner import free_port

    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    engine = make_engine(url)
    migrate(engine)
    _seed(sessions(engine))
    engine.dispose()
    monkeypatch.setenv("ECERT_HOME", str(tmp_path / ".ecert"))
    monkeypatch.setenv("ECERT_ISSUER_DATABASE_URL", url)
    monkeypatch.setenv("ECERT_RPC_URL", f"http://127.0.0.1:{free_port()}")  # no chain: its panels say so
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    runner = CliRunner()
    done = runner.invoke(app, ["dashboard", "--region", "330000", "--days", "366"])
    assert done.exit_code == 0, done.output
    assert "11330100002493028E" in done.output and "114401000075021133" not in done.output
    assert "gas: not available (dash_chain_down)" in done.output
    exported = runner.invoke(
        app, ["dashboard", "--agency", AGENCY, "--days", "366", "--panel", "issued", "--csv"]
    )
    assert exported.exit_code == 0, exported.output
    engine = make_engine(url)
    with sessions(engine)() as session:
        scope = Scope.for_agency(session, AGENCY)
    last = today()
    expected = build(sessions(engine), scope, last - dt.timedelta(days=365), last).panels["issued"].csv()
    engine.dispose()
    assert exported.output.splitlines() == expected.splitlines()


PROVINCE = "11330000002482090Q"  # a provincial regulator: region 330000 governs 330100


def _member(agency: str) -> SignedInStaff:
    return SignedInStaff("t", StaffView(1, "auditor1", "审计员", Role.AUDITOR, agency, "机关", False))


def test_the_console_s_region_view_covers_the_agencies_of_the_member_s_area(
    database: sessionmaker[Session],
) -> None:
    """A province's staff see their cities' agencies in the region view; a city's only its own."""
    _seed(database)
    with database.begin() as session:
        session.add(Agency(code=PROVINCE, name="浙江省市场监督管理局", region="330000"))
        session.flush()
        session.add(Job(id="j3", agency_code=PROVINCE, type_code=T1, request_hash="h", total=1))
        session.flush()
        session.add(Certificate(identifier="p1", agency_code=PROVINCE, type_code=T1, job_id="j3", position=1,
                                sealed_fields=b"x", digest=b"\0" * 32, created_at=CST_MIDNIGHT + 5 * dt.timedelta(seconds=1)))  # fmt: skip
    with database() as session:
        assert scope_of(session, _member(PROVINCE), "region").agencies == (PROVINCE, AGENCY)
        assert scope_of(session, _member(PROVINCE), "agency").agencies == (PROVINCE,)
        assert scope_of(session, _member(AGENCY), "region").agencies == (AGENCY,)  # 330100 governs no other
        region = scope_of(session, _member(PROVINCE), "region")
    figures = build(database, region, dt.date(2026, 12, 3), dt.date(2026, 12, 4))
    assert _rows(figures.panels["issued"]) == {
        "2026-12-03": [1, 0, 1],
        "2026-12-04": [2, 1, 3],
    }  # a1; a2 a3 p1
