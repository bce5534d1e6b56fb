"""Attacks on the console dashboard's region view (`/console/dashboard?view=region`,
`issuer/api/console_dashboard.py`, `issuer.dashboard.Scope.for_region`) over HTTP (httpx → ASGI)
on a real SQLite database: who sees whose figures (a peer agency of the same region never)."""

from __future__ import annotations

import datetime as dt
import secrets
import sys
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))  # the console harness
from console_harness import console_app, console_staff
from test_issuer_staff import PASSWORD, Clock, browser, sign_in

from issuer.api import console_dashboard
from issuer.db import make_engine, migrate, sessions
from issuer.models import Agency, Certificate, Job
from issuer.staff import IssuerStaff, Role

TYPE = "11100000000013338W001"
CITY = "11330100002493028E"  # 杭州市市场监督管理局, 330100
PEER = "11330100002493036Y"  # another department of the same city, 330100: no authority over CITY
DISTRICT = "11330106002493044P"  # 西湖区, 330106: under the city
PROVINCE = "11330000002482090Q"  # 浙江省, 330000
ELSEWHERE = "114401000075021133"  # 广州, 440100
AGENCIES = {CITY: ("杭州市市场监督管理局", "330100", 3), PEER: ("杭州市公安局", "330100", 11),
            DISTRICT: ("西湖区市场监督管理局", "330106", 5), PROVINCE: ("浙江省市场监督管理局", "330000", 2),
            ELSEWHERE: ("广州市市场监督管理局", "440100", 7)}  # fmt: skip


@pytest.fixture
def made(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'issuer.sqlite'}")
    migrate(engine)
    factory = sessions(engine)
    now = dt.datetime.now(dt.UTC)
    with factory.begin() as session:
        session.add_all(
            [Agency(code=code, name=name, region=region) for code, (name, region, _n) in AGENCIES.items()]
        )
        session.flush()
        for code, (_name, _region, count) in AGENCIES.items():
            job = Job(
                id=secrets.token_hex(8), agency_code=code, type_code=TYPE, request_hash="0" * 64, total=count
            )
            session.add(job)
            session.flush()
            session.add_all([Certificate(identifier=f"{code}-{i}", agency_code=code, type_code=TYPE, job_id=job.id,
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


def member_of(
    app: FastAPI, staff: IssuerStaff, clock: Clock, agency: str, role: Role = Role.AUDITOR
) -> httpx.Client:
    made = staff.add(agency, role, f"{role.value}{secrets.token_hex(3)}", "审计员", PASSWORD)
    client = browser(app)
    assert sign_in(client, made.username, made.secret, clock).status_code == 303
    clock.next_step()
    return client


def issued(client: httpx.Client, view: str) -> int:
    """The issued panel's CSV `total` column, summed over days."""
    answer = client.get(f"/console/dashboard/issued.csv?days=30&view={view}")
    assert answer.status_code == 200, answer.text
    lines = answer.text.lstrip("\ufeff").splitlines()
    return sum(int(line.rsplit(",", 1)[1]) for line in lines[1:])


def count(*codes: str) -> int:
    return sum(AGENCIES[c][2] for c in codes)


def test_the_region_view_stays_in_the_area_and_needs_a_dashboard_role(
    app: FastAPI, staff: IssuerStaff, clock: Clock
) -> None:
    with browser(app) as anonymous:  # no session
        assert anonymous.get("/console/dashboard/issued.csv?view=region").status_code in (302, 303, 307, 401)
    clerk = member_of(app, staff, clock, PROVINCE, Role.CLERK)
    assert clerk.get("/console/dashboard/issued.csv?view=region").status_code == 403
    district = member_of(app, staff, clock, DISTRICT)  # nothing under it: its own figures only
    assert issued(district, "region") == count(DISTRICT)
    province = member_of(app, staff, clock, PROVINCE)
    assert issued(province, "region") == count(PROVINCE, CITY, PEER, DISTRICT)  # never Guangzhou's
    guangzhou = member_of(app, staff, clock, ELSEWHERE)
    assert issued(guangzhou, "region") == count(ELSEWHERE)
    assert province.get("/console/dashboard/issued.csv?view=REGION").status_code == 422


def test_a_city_agency_does_not_see_a_peer_department_of_the_same_city(
    app: FastAPI, staff: IssuerStaff, clock: Clock
) -> None:
    city = member_of(app, staff, clock, CITY)
    assert issued(city, "region") == count(CITY, DISTRICT)
