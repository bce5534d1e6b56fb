"""The agency console's dashboard `/console/dashboard` (issue 12, point 7) on the whole stack: its
figures equal counts computed independently — by SQL written here against the issuer's and the
verifier's databases, and from the chain's own events and receipts via web3 — its CSV exports are
its tables, and the page passes axe-core in Debian's Chromium (zh and en). A clerk is refused.
Screenshots go to test-artifacts/e2e/issuer-dashboard/.

The stack's issuer service runs without a dashboard verifier; this module serves the issuer app
in process on the same home and database, configured with a verifier key of kind `agency`."""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
import uvicorn
from pydantic import SecretStr
from stack import AGENCY, Stack, artifact_dir, audit_accessibility, chromium, stack_for

from issuer.dashboard import Dashboard, Scope, build, verifier_source
from issuer.runtime import IssuerRuntime
from issuer.settings import IssuerSettings
from issuer.staff import staff_accounts
from registry.chain.runner import free_port
from registry.contracts.certificate_registry import CertificateRegistry
from registry.stats_days import today
from registry.workspace import agency_key_name

pytestmark = [pytest.mark.chain, pytest.mark.xdist_group("wallet-e2e")]
PASSWORD = "dashboard-e2e-pass-1"
OTHER_BANK = "广州某银行天河支行"  # region 440100: another province than the agency's 330100


@pytest.fixture(scope="module")
def stack(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    return stack_for(pytestconfig, tmp_path_factory)


def _new_key(stack: Stack, name: str, region: str, kind: str) -> str:
    out = stack.ecert(
        "verifier", "org", "add", "--name", name, "--region", region, "--kind", kind, "--node", "330000"
    )
    return out.strip().splitlines()[-1]


def _access_rows(stack: Stack) -> int:
    with stack.verifier_db() as db:
        return int(db.execute("SELECT count(*) FROM access_log").fetchone()[0])


@pytest.fixture(scope="module")
def activity(stack: Stack) -> dict[str, str]:
    """Status changes (suspend + reinstate one certificate, revoke another) and verifications of
    the agency's certificates by a bank of the same province and one of another province."""
    kept, revoked = stack.person(), stack.person()
    with stack.issuer_client() as api:
        for identifier, status, reason in ((kept.identifier, "suspended", 2), (kept.identifier, "active", 1),
                                           (revoked.identifier, "revoked", 7)):  # fmt: skip
            answer = api.post(
                f"/v1/certificates/{identifier}/status", json={"status": status, "reason": reason}
            )
            assert answer.status_code == 200, answer.text
        packages = [api.get(f"/v1/certificates/{p.identifier}/package").json() for p in (kept, revoked)]
    other_key = _new_key(stack, OTHER_BANK, "440100", "bank")
    before = _access_rows(stack)
    verifications = [(stack.bank_key, packages[0]), (stack.bank_key, packages[0]), (other_key, packages[0]),
                     (stack.bank_key, packages[1])]  # fmt: skip
    for key, package in verifications:
        answer = httpx.post(f"{stack.verifier.url}/v1/verifications", json={"package": package, "purpose": "看板核对"},
                            headers={"Authorization": f"Bearer {key}"}, timeout=30)  # fmt: skip
        assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 30
    while _access_rows(stack) < before + len(verifications):  # the access log is written behind the request
        assert time.monotonic() < deadline, "the verifications did not reach the access log"
        time.sleep(0.2)
    return {"agency_key": _new_key(stack, "杭州市市场监督管理局", "330100", "agency")}


@pytest.fixture(scope="module")
def runtime(stack: Stack, activity: dict[str, str]) -> Iterator[IssuerRuntime]:
    settings = IssuerSettings(dashboard_verifier_url=stack.verifier.url,
                              dashboard_verifier_key=SecretStr(activity["agency_key"]))  # fmt: skip
    opened = IssuerRuntime.open(stack._workspace(), settings)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def dashboard(runtime: IssuerRuntime, stack: Stack, activity: dict[str, str]) -> Dashboard:
    last = today()
    with runtime.sessions() as session:
        scope = Scope.for_agency(session, AGENCY)
    return build(runtime.sessions, scope, last - dt.timedelta(days=29), last, registry=runtime.workspace.registry,
                 verifier=verifier_source(stack.verifier.url, activity["agency_key"]), verifier_url=stack.verifier.url)  # fmt: skip


def _column(dashboard: Dashboard, panel: str, column: str) -> dict[str, Any]:
    found = dashboard.panels[panel]
    assert found.available, (panel, found.note)
    i = found.columns.index(column)
    return {row[0]: row[i] for row in found.rows}


def _nonzero(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v}


def _period_bounds(dashboard: Dashboard) -> tuple[str, str]:
    return dashboard.first.isoformat(), dashboard.last.isoformat()


# ─── the figures, against the databases ────────────────────────────────────────────────────


def test_issued_per_day_and_type_equal_the_issuer_database(stack: Stack, dashboard: Dashboard) -> None:
    first, last = _period_bounds(dashboard)
    with stack.issuer_db() as db:
        rows = db.execute(
            "SELECT date(created_at, '+8 hours') AS d, type_code, count(*) FROM certificates"
            " WHERE agency_code = ? AND d BETWEEN ? AND ? GROUP BY d, type_code", (AGENCY, first, last)
        ).fetchall()  # fmt: skip
    assert rows
    for d, type_code, n in rows:
        assert _column(dashboard, "issued", type_code)[d] == n
    by_day: dict[str, int] = {}
    for d, _t, n in rows:
        by_day[d] = by_day.get(d, 0) + n
    assert _nonzero(_column(dashboard, "issued", "total")) == by_day


def test_anchoring_lag_equals_the_issuer_database(stack: Stack, dashboard: Dashboard) -> None:
    first, last = _period_bounds(dashboard)
    with stack.issuer_db() as db:
        rows = db.execute(
            "SELECT date(b.confirmed_at, '+8 hours') AS d, count(DISTINCT b.id), count(c.id),"
            " max((julianday(b.confirmed_at) - julianday(c.created_at)) * 86400.0),"
            " avg((julianday(b.confirmed_at) - julianday(c.created_at)) * 86400.0)"
            " FROM batches b JOIN certificates c ON c.batch_id = b.id"
            " WHERE b.agency_code = ? AND b.state = 'confirmed' AND d BETWEEN ? AND ? GROUP BY d",
            (AGENCY, first, last),
        ).fetchall()
    assert rows
    batches, certificates = _column(dashboard, "lag", "batches"), _column(dashboard, "lag", "certificates")
    longest, mean = _column(dashboard, "lag", "lag_max_s"), _column(dashboard, "lag", "lag_mean_s")
    assert _nonzero(certificates) == {d: n for d, _b, n, _x, _m in rows}
    assert _nonzero(batches) == {d: b for d, b, _n, _x, _m in rows}
    for d, _b, _n, x, m in rows:
        assert longest[d] == pytest.approx(max(x, 0), abs=0.06)
        assert mean[d] == pytest.approx(max(m, 0), abs=0.06)


def _agency_roots(stack: Stack) -> set[str]:
    with stack.issuer_db() as db:
        return {"0x" + bytes(r).hex() for (r,) in db.execute(
            "SELECT root FROM batches WHERE agency_code = ? AND state IN ('mined', 'confirmed')", (AGENCY,))}  # fmt: skip


def _verifier_counts(stack: Stack, dashboard: Dashboard) -> list[tuple[str, str, str, str | None, int]]:
    """(day, region, verdict, reason, count) of the agency's certificates' verifications, by the
    roots the issuer's database says are the agency's."""
    roots = _agency_roots(stack)
    first, last = _period_bounds(dashboard)
    with stack.verifier_db() as db:
        rows = db.execute(
            "SELECT date(at, '+8 hours') AS d, organisation_region, verdict, reason, lower(batch_root), count(*)"
            " FROM access_log WHERE d BETWEEN ? AND ? GROUP BY 1, 2, 3, 4, 5", (first, last)
        ).fetchall()  # fmt: skip
    return [(d, region, verdict, reason, n) for d, region, verdict, reason, root, n in rows if root in roots]


def test_verifications_equal_the_verifier_s_access_log(stack: Stack, dashboard: Dashboard) -> None:
    counted = _verifier_counts(stack, dashboard)
    same: dict[str, int] = {}
    other: dict[str, int] = {}
    regions: dict[str, int] = {}
    failures: dict[tuple[str, str], int] = {}
    for d, region, verdict, reason, n in counted:
        target = same if region.startswith("33") else other
        target[d] = target.get(d, 0) + n
        regions[region] = regions.get(region, 0) + n
        if verdict != "VALID":
            failures[(reason or "—", verdict)] = failures.get((reason or "—", verdict), 0) + n
    assert other and failures, counted  # the other province's bank, the revoked certificate
    assert _nonzero(_column(dashboard, "verifications", "same_province")) == same
    assert _nonzero(_column(dashboard, "verifications", "other_provinces")) == other
    assert _column(dashboard, "regions", "verifications") == regions
    assert {(r[0], r[1]): r[2] for r in dashboard.panels["failures"].rows} == failures
    assert ("CERT_REVOKED", "INVALID") in failures
    total, others = sum(regions.values()), sum(other.values())
    assert dashboard.panels["verifications"].detail["other_share_pct"] == round(100 * others / total, 1)


# ─── the figures, against the chain ────────────────────────────────────────────────────────


def test_anchoring_and_gas_equal_the_chain_s_events_and_receipts(
    stack: Stack, runtime: IssuerRuntime, dashboard: Dashboard
) -> None:
    registry: CertificateRegistry = runtime.workspace.registry
    w3 = registry.client.w3
    agency_key = runtime.workspace.keystore.address(agency_key_name(AGENCY))
    anchored = registry.contract.events.BatchAnchored().get_logs(
        from_block=0, argument_filters={"key": agency_key}
    )
    assert anchored
    certificates = sum(log["args"]["count"] for log in anchored)
    gas = sum(w3.eth.get_transaction_receipt(log["transactionHash"])["gasUsed"] for log in anchored)
    # every batch of this stack was anchored within the period
    assert sum(v or 0 for v in _column(dashboard, "gas", "certificates").values()) == certificates
    assert sum(v or 0 for v in _column(dashboard, "gas", "gas").values()) == gas
    assert sum(v or 0 for v in _column(dashboard, "lag", "certificates").values()) == certificates


def test_status_changes_equal_the_chain_s_events(
    stack: Stack, runtime: IssuerRuntime, dashboard: Dashboard
) -> None:
    registry: CertificateRegistry = runtime.workspace.registry
    roots = _agency_roots(stack)
    counted = {"suspended": 0, "reinstated": 0, "revoked": 0}
    for log in registry.contract.events.StatusChanged().get_logs(from_block=0):
        if "0x" + bytes(log["args"]["root"]).hex() in roots:
            name = {0: "reinstated", 1: "suspended", 2: "revoked"}[log["args"]["status"]]
            counted[name] += int(log["args"]["mask"]).bit_count()
    for log in registry.contract.events.BatchRevoked().get_logs(from_block=0):
        assert "0x" + bytes(log["args"]["root"]).hex() not in roots  # none in this stack
    for root in roots:  # revokeCertificates (a console's bulk revocation): anonymous, topic 0 is the root
        for log in registry.client.w3.eth.get_logs(
            {"address": registry.address, "fromBlock": 0, "toBlock": "latest", "topics": [root]}
        ):
            data = bytes(log["data"])  # word, mask, reason
            assert len(data) == 96
            counted["revoked"] += int.from_bytes(data[32:64], "big").bit_count()
    assert counted["suspended"] >= 1 and counted["reinstated"] >= 1 and counted["revoked"] >= 1
    for status, n in counted.items():
        assert sum(_column(dashboard, "status", status).values()) == n, status


# ─── the page ──────────────────────────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def console(runtime: IssuerRuntime) -> Iterator[str]:
    from issuer.api import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", proxy_headers=False))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the issuer did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def shots() -> Path:
    return artifact_dir("issuer-dashboard")


def _sign_in(page: Any, url: str, username: str, secret: str, lang: str) -> None:
    page.goto(f"{url}/console/login?lang={lang}")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("input[name=code]").fill(pyotp.TOTP(secret).now())
    page.locator("form button[type=submit]").last.click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/console?lang={lang}"), page.locator("main").inner_text()


def _plain(cell: str) -> str:
    """A table cell as the CSV writes it: no thousands separators, empty for none."""
    return "" if cell == "—" else cell.replace(",", "")


@pytest.mark.parametrize(("lang", "role"), [("zh", "auditor"), ("en", "admin")])
def test_the_dashboard_page_its_tables_and_csv_exports(
    runtime: IssuerRuntime,
    console: str,
    browser: Any,
    shots: Path,
    dashboard: Dashboard,
    lang: str,
    role: str,
) -> None:
    username = f"dash-{role}-{lang}"
    made = staff_accounts(runtime).add(AGENCY, role, username, "看板读者", PASSWORD)
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="zh-CN", accept_downloads=True
    )
    page = context.new_page()
    _sign_in(page, console, username, made.secret, lang)
    audit_accessibility(page)  # the home page, with its link to the dashboard
    page.locator("[data-dashboard-link]").click()
    page.wait_for_load_state()
    assert "/console/dashboard" in page.url
    audit_accessibility(page)
    page.screenshot(path=str(shots / f"{lang}-dashboard.png"), full_page=True)
    for key in ("issued", "verifications", "regions", "failures", "status", "lag", "gas"):
        section = page.locator(f'[data-panel="{key}"]')
        assert section.locator('svg[role="img"] title').count() == 1, key
        table = [[c.inner_text() for c in row.locator("th, td").all()]
                 for row in section.locator("tbody tr").all()]  # fmt: skip
        exported = context.request.get(f"{console}/console/dashboard/{key}.csv?days=30&lang={lang}")
        assert exported.status == 200 and exported.headers["content-type"].startswith("text/csv")
        lines = list(csv.reader(io.StringIO(exported.text().removeprefix("\ufeff"))))
        assert lines[0] == dashboard.panels[key].columns
        words = {"yes": "是" if lang == "zh" else "yes", "no": "否" if lang == "zh" else "no"}
        assert [[words.get(v, v) for v in line] for line in lines[1:]] == [
            [_plain(c) for c in row] for row in table
        ], key
    corrections = page.locator('[data-panel="corrections"]')  # issuer.corrections' source: none open here
    assert corrections.locator("[data-note]").count() == 0 and corrections.locator("tbody tr").count() == 3
    page.locator("#dash-days").select_option("7")
    page.locator(".period button[type=submit]").click()
    page.wait_for_load_state()
    assert "days=7" in page.url and page.locator('[data-table="issued"] tbody tr').count() == 7
    assert (
        page.locator("[data-chain=up]").count() == 1 and page.locator("[data-verifier=healthy]").count() == 1
    )
    context.close()


def test_a_clerk_may_not_see_the_dashboard(runtime: IssuerRuntime, console: str, browser: Any) -> None:
    made = staff_accounts(runtime).add(AGENCY, "clerk", "dash-clerk", "经办人甲", PASSWORD)
    context = browser.new_context()
    page = context.new_page()
    _sign_in(page, console, "dash-clerk", made.secret, "zh")
    assert page.locator("[data-dashboard-link]").count() == 0
    answer = page.goto(f"{console}/console/dashboard")
    assert answer.status == 403 and page.locator('[data-problem="STAFF_ROLE_FORBIDDEN"]').count() == 1
    assert context.request.get(f"{console}/console/dashboard/issued.csv").status == 403
    context.close()


def test_the_verifier_s_statistics_need_an_agency_or_node_key(stack: Stack, activity: dict[str, str]) -> None:
    url = f"{stack.verifier.url}/v1/stats/verifications"
    assert httpx.get(url, params={"agency": AGENCY}, timeout=10).status_code == 401
    bank = httpx.get(
        url, params={"agency": AGENCY}, headers={"Authorization": f"Bearer {stack.bank_key}"}, timeout=10
    )
    assert bank.status_code == 403
    agency = httpx.get(url, params={"agency": AGENCY}, headers={"Authorization": f"Bearer {activity['agency_key']}"},
                       timeout=10)  # fmt: skip
    assert agency.status_code == 200
    rows = agency.json()["rows"]
    assert rows and set(rows[0]) == {
        "day",
        "region",
        "verdict",
        "reason",
        "count",
    }  # counts only: no personal data


def test_the_dashboard_says_when_the_verifier_is_not_configured_or_down(runtime: IssuerRuntime) -> None:
    last = today()
    with runtime.sessions() as session:
        scope = Scope.for_agency(session, AGENCY)
    unset = build(runtime.sessions, scope, last, last, registry=None, verifier=verifier_source(None, None))
    assert unset.panels["verifications"].note == "dash_verifier_unset"
    assert unset.panels["gas"].note == unset.panels["status"].note == "dash_chain_down"
    down = build(
        runtime.sessions,
        scope,
        last,
        last,
        verifier=verifier_source(f"http://127.0.0.1:{free_port()}", "vk_x"),
    )
    assert down.panels["failures"].note == "dash_verifier_down"
    assert unset.panels["issued"].available
