"""`ecert issuer dashboard`: the console dashboard's figures (`issuer.dashboard`) on the command
line, for one agency or — an authority's view — every agency this issuer serves in a region;
a panel's CSV (what the console exports) with `--panel P --csv`. Only typer and rich are imported
here, the runtime inside the command.

Wired by `issuer.cli.register` with `register(issuer_group)` (the `ecert issuer` group)."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from registry.error_codes import ErrorCode
from registry.errors import EcertError

console = Console(soft_wrap=True, highlight=False)


def register(issuer_group: typer.Typer) -> None:
    issuer_group.command("dashboard")(dashboard)


def dashboard(
    agency: Annotated[str | None, typer.Option(help="One agency (统一社会信用代码).")] = None,
    region: Annotated[
        str | None,
        typer.Option(help="Every agency served here in this region (an authority's view), e.g. 330000."),
    ] = None,
    days: Annotated[
        int, typer.Option(min=1, max=366, help="The last N days (China Standard Time), today included.")
    ] = 30,
    panel: Annotated[
        str | None,
        typer.Option(
            help="Only this panel: issued, verifications, regions, failures, status, lag, gas, corrections."
        ),
    ] = None,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="Print the panel as CSV (with --panel), as the console exports it.")
    ] = False,
) -> None:
    """The dashboard's figures: issued per day and type, verifications (same and other provinces),
    failure reasons, status changes on chain, anchoring lag and gas, open correction requests."""
    from issuer.dashboard import PANELS, Scope, build, verifier_source
    from issuer.runtime import IssuerRuntime
    from registry.certificate.identifiers import parse_uscc
    from registry.stats_days import today

    if (agency is None) == (region is None):
        raise EcertError("Give one of --agency or --region", code=ErrorCode.REQUEST_INVALID, field="agency")
    if panel is not None and panel not in PANELS:
        raise EcertError(f"Unknown panel {panel!r}: one of {', '.join(PANELS)}", code=ErrorCode.REQUEST_INVALID,
                         field="panel")  # fmt: skip
    if as_csv and panel is None:
        raise EcertError("--csv prints one panel: add --panel", code=ErrorCode.REQUEST_INVALID, field="panel")
    runtime = IssuerRuntime.open()
    try:
        with runtime.sessions() as session:
            scope = (Scope.for_agency(session, parse_uscc(agency).code) if agency
                     else Scope.for_region(session, region or ""))  # fmt: skip
        registry = None
        try:
            registry = runtime.workspace.registry
        except Exception:  # no deployment or no chain: the chain's panels say so
            registry = None
        settings = runtime.settings
        key = settings.dashboard_verifier_key.get_secret_value() if settings.dashboard_verifier_key else None
        last = today()
        figures = build(runtime.sessions, scope, last - dt.timedelta(days=days - 1), last, registry=registry,
                        verifier=verifier_source(settings.dashboard_verifier_url, key),
                        verifier_url=settings.dashboard_verifier_url)  # fmt: skip
    finally:
        runtime.close()
    if as_csv and panel is not None:
        sys.stdout.write(figures.panels[panel].csv())
        return
    console.print(f"{scope.label}: {', '.join(scope.agencies) or 'no agency served here'}, "
                  f"{figures.first.isoformat()} – {figures.last.isoformat()} (CST)")  # fmt: skip
    for key_ in [panel] if panel else list(PANELS):
        shown = figures.panels[key_]
        if shown.note:
            console.print(f"{key_}: not available ({shown.note})")
            continue
        table = Table(title=key_, title_justify="left")
        for column in shown.columns:
            table.add_column(
                column, justify="left" if column in ("day", "region", "reason", "verdict") else "right"
            )
        for row in shown.rows:
            if any(v not in (0, None) for v in row[1:]):  # days with something
                table.add_row(*("—" if v is None else str(v) for v in row))
        console.print(table)
