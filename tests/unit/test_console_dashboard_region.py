"""The console dashboard's region view (issue 12, point 7: "per agency, and per region for an
authority") over real HTTP to the app on SQLite: a provincial regulator's auditor chooses its
area and sees its cities' agencies counted with its own, in the page and the CSV; a city
agency, whose area holds no other agency here, is offered no region view and gets its own."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from console_harness import console_app, console_staff
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker
from test_issuer_staff import PASSWORD, Clock, browser, sign_in

from issuer.api import console_dashboard
from issuer.db import make_engine, migrate, sessions
from issuer.models import Agency, Certificate, Job
from issuer.staff import IssuerStaff, Role

CITY, PROVINCE, ELSEWHERE = "11330100002493028E", "11330000002482090Q", "114401000075021133"
TYPE = "11100000000013338W001"
ISSUED = {CITY: 3, PROVINCE: 2, ELSEWHERE: 7}


@pytest.fixture
def made(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'issuer.sqlite'}")
    migrate(engine)
    factory = sessions(engine)
    now = dt.datetime.now(dt.UTC)
    with factory.begin() as session:
        session.add_all([Agency(code=CITY, name="杭州市市场监督管理局", region="330100"),
                         Agency(code=PROVINCE, name="浙江省市场监督管理局", region="330000"),
                         Agency(code=ELSEWHERE, name="广州市市场监督管理局", region="440100")])  # fmt: skip
        session.flush()
        for agency, count in ISSUED.items():
            job = Job(
                id=secrets.token_hex(8),
                agency_code=agency,
                type_code=TYPE,
                request_hash="0" * 64,
                total=count,
            )
            session.add(job)
            session.flush()
            session.add_all([Certificate(identifier=f"{agency}-{i}", agency_code=agency, type_code=TYPE, job_id=job.id,
                                         position=i + 1, sealed_fields=b"", digest=b"\0" * 32, created_at=now)
                             for i in range(count)])  # fmt: skip
    return factory


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def staff(made: sessionmaker[Session], clock: Clock) -> IssuerStaff:
    return console_staff(made, clock)


@pytest.fixture
def app(made: sessionmaker[Session], staff: IssuerStaff) -> FastAPI:
    settings = SimpleNamespace(public_url=None, dashboard_verifier_url=None, dashboard_verifier_key=None)
    runtime = SimpleNamespace(sessions=made, settings=settings, workspace=SimpleNamespace())
    return console_app(staff, runtime, lambda app: app.include_router(console_dashboard.router))


def auditor_of(app: FastAPI, staff: IssuerStaff, clock: Clock, agency: str) -> httpx.Client:
    made = staff.add(agency, Role.AUDITOR, f"auditor{agency[-4:]}", "审计员", PASSWORD)
    client = browser(app)
    assert sign_in(client, made.username, made.secret, clock).status_code == 303
    clock.next_step()
    return client


def issued_total(csv_text: str) -> int:
    """The `total` column of the issued panel's CSV, summed over days."""
    lines = csv_text.lstrip("\ufeff").splitlines()
    return sum(int(line.rsplit(",", 1)[1]) for line in lines[1:])


def test_a_province_s_auditor_sees_its_area_and_a_city_s_only_itself(
    app: FastAPI, staff: IssuerStaff, clock: Clock
) -> None:
    province = auditor_of(app, staff, clock, PROVINCE)
    own = province.get("/console/dashboard?lang=en")
    assert own.status_code == 200 and 'name="view"' in own.text
    assert "Region 330000 (2 agencies served here)" in own.text
    area = province.get("/console/dashboard?lang=en&view=region")
    assert area.status_code == 200 and "&amp;view=region" in area.text  # the CSV links keep the view
    assert issued_total(province.get("/console/dashboard/issued.csv?days=30&view=region").text) == (
        ISSUED[PROVINCE] + ISSUED[CITY]
    )  # the city's agency counted, Guangzhou's not
    assert issued_total(province.get("/console/dashboard/issued.csv?days=30").text) == ISSUED[PROVINCE]
    city = auditor_of(app, staff, clock, CITY)
    page = city.get("/console/dashboard?view=region")
    assert page.status_code == 200 and 'name="view"' not in page.text
    assert issued_total(city.get("/console/dashboard/issued.csv?days=30&view=region").text) == ISSUED[CITY]
    assert province.get("/console/dashboard?view=everything").status_code == 422
