"""/console/dashboard: the agency's figures (`issuer.dashboard`) as charts drawn on the server
(`issuer.charts`), each with its table and a CSV export (`/console/dashboard/<panel>.csv`, the
same rows as the table). Open to auditors, administrators and approvers (they read figures of
what they answer for); clerks issue and propose, and are refused (403 `STAFF_ROLE_FORBIDDEN`).
Aggregates only: no holder, no identifier, no personal data.

Two views (`?view=`): `agency`, the member's own agency; `region`, the agency and every agency this
issuer serves in the regions below its own (a province's regulator sees its cities' agencies, an
authority's view; never a peer agency of the same region; offered only when there are some)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from issuer import charts
from issuer.api.console import console_router, lang_of, render, require_role
from issuer.console_text import CONSOLE
from issuer.dashboard import PANELS, Dashboard, Panel, Scope, build, verifier_source
from issuer.staff import Role, SignedInStaff
from registry.error_codes import ErrorCode
from registry.errors import NotFound
from registry.stats_days import today

__all__ = ["DASHBOARD_ROLES", "router"]

DASHBOARD_ROLES = (Role.AUDITOR, Role.ADMIN, Role.APPROVER)
PERIODS = (7, 30, 90)
STYLESHEET = Path(__file__).parents[1] / "static" / "console_dashboard.css"
SHORT_DAY = 5  # `2026-12-04` → `12-04` under a bar

router = console_router(tags=["console"])
Reader = Annotated[SignedInStaff, Depends(require_role(*DASHBOARD_ROLES))]


def _period(days: int) -> tuple[dt.date, dt.date]:
    last = today()
    return last - dt.timedelta(days=days - 1), last


View = Literal["agency", "region"]


def scope_of(session: Any, signed: SignedInStaff, view: View) -> Scope:
    """The agency alone, or with every served agency in the regions below its own (a province's
    regulator and its cities' agencies; never a peer of the same region)."""
    code = signed.member.agency_code
    own = Scope.for_agency(session, code)
    region = own.regions.get(code)
    if view != "region" or not region:
        return own
    area = Scope.for_region(session, region)
    # below it, not beside it: a city's market regulator does not read its city's transport bureau
    kept = tuple(a for a in area.agencies if a == code or area.regions[a] != region)
    return Scope(kept, {a: area.regions[a] for a in kept}, area.label)


def dashboard_for(request: Request, signed: SignedInStaff, days: int, view: View = "agency") -> Dashboard:
    """The figures of the member's agency (or of its area, `view="region"`) over the last `days` days."""
    runtime = request.app.state.runtime
    settings = runtime.settings
    registry, chain_note = None, None
    try:
        registry = runtime.workspace.registry
    except Exception:  # no deployment, no keystore: the chain's panels say so
        chain_note = "dash_chain_down"
    key = settings.dashboard_verifier_key.get_secret_value() if settings.dashboard_verifier_key else None
    with runtime.sessions() as session:
        scope = scope_of(session, signed, view)
    first, last = _period(days)
    return build(runtime.sessions, scope, first, last, registry=registry, chain_note=chain_note,
                 verifier=verifier_source(settings.dashboard_verifier_url, key),
                 verifier_url=settings.dashboard_verifier_url)  # fmt: skip


def _cell(value: Any, t: dict[str, str]) -> str:
    if value is None:
        return t["dash_none"]
    if isinstance(value, str) and "val_" + value in t:  # yes/no, a deadline bucket
        return t["val_" + value]
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _view(panel: Panel, t: dict[str, str], lang: str, days: int, scope_view: View) -> dict[str, Any]:
    """What the template shows of a panel: headers and cells as text, the chart as SVG markup."""
    headers = [t.get("col_" + c, c) for c in panel.columns]
    view: dict[str, Any] = {
        "key": panel.key, "title": t["dash_" + panel.key], "note": panel.note, "headers": headers,
        "rows": [[_cell(v, t) for v in row] for row in panel.rows],
        "csv": f"/console/dashboard/{panel.key}.csv?days={days}&lang={lang}&view={scope_view}", "svg": None, "legend": None,
    }  # fmt: skip
    if panel.available and panel.series and panel.rows:
        labels = [str(row[0]) for row in panel.rows]
        series = [(headers[i], [row[i] if isinstance(row[i], int | float) else 0 for row in panel.rows])
                  for i in panel.series]  # fmt: skip
        total = sum(float(v or 0) for _, values in series for v in values)
        description = t["dash_chart_desc"].format(n=len(labels), total=f"{total:,.0f}")
        short = SHORT_DAY if panel.columns[0] == "day" else 0
        view["svg"] = Markup(charts.bar_chart(f"chart-{panel.key}", view["title"], description, labels, series,  # noqa: S704 - escaped by charts
                                              short_label=short))  # fmt: skip
        if len(series) > 1:
            view["legend"] = Markup(charts.legend([name for name, _ in series]))  # noqa: S704 - escaped by charts
    return view


def _days(days: int) -> int:
    return days if days in PERIODS else 30


def _area(request: Request, signed: SignedInStaff) -> tuple[str, int]:
    """The agency's region and how many served agencies it holds (the region view's size)."""
    with request.app.state.runtime.sessions() as session:
        area = scope_of(session, signed, "region")
    return area.label, len(area.agencies)


@router.get("/console/dashboard", response_class=HTMLResponse)
def dashboard_page(
    request: Request, signed: Reader, days: int = Query(30, ge=1, le=366), view: View = Query("agency")
) -> HTMLResponse:
    days = _days(days)
    lang = lang_of(request)
    t = CONSOLE[lang]
    region, in_area = _area(request, signed)
    view = view if in_area > 1 else "agency"  # an area of one agency is the agency's own view
    figures = dashboard_for(request, signed, days, view)
    panels = [_view(figures.panels[key], t, lang, days, view) for key in PANELS]
    verifications = figures.panels["verifications"]
    return render(request, "console_dashboard.html", signed, panels=panels, health=figures.health,
                  days=days, periods=PERIODS, first=figures.first.isoformat(), last=figures.last.isoformat(),
                  other_share=verifications.detail.get("other_share_pct"), view=view, region=region,
                  in_area=in_area,
                  scope=figures.scope.label if view == "agency"
                  else t["dash_region_label"].format(region=region, n=in_area))  # fmt: skip


@router.get("/console/dashboard/{panel}.csv")
def dashboard_csv(
    request: Request,
    signed: Reader,
    panel: str,
    days: int = Query(30, ge=1, le=366),
    view: View = Query("agency"),
) -> Response:
    if panel not in PANELS:
        raise NotFound(f"No dashboard panel {panel[:40]!r}", code=ErrorCode.NOT_FOUND)
    days = _days(days)
    figures = dashboard_for(request, signed, days, view)
    whose = signed.member.agency_code if view == "agency" else f"region-{figures.scope.label}"
    name = f"{panel}-{whose}-{figures.first.isoformat()}-{figures.last.isoformat()}.csv"
    return Response("\ufeff" + figures.panels[panel].csv(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})  # fmt: skip


@router.get("/console/static/console_dashboard.css")
def stylesheet() -> Response:
    return Response(STYLESHEET.read_bytes(), media_type="text/css; charset=utf-8",
                    headers={"Cache-Control": "no-cache"})  # fmt: skip
