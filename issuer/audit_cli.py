"""`ecert audit verify|export|anchor`: the staff audit log (`issuer.audit`) for auditors and
operators. Registered by `issuer.cli.register`; like every room's CLI, only typer and rich are
imported here, the runtime inside each command."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from registry.cli import command_group
from registry.error_codes import ErrorCode
from registry.errors import EcertError

if TYPE_CHECKING:
    from issuer.runtime import IssuerRuntime

console = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)
audit_app = command_group(
    "The staff audit log: every sign-in, issue, unmask, approval, print and key change, hash-chained "
    "per agency, its head anchored on chain. Verify it, export it, anchor its head now."
)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


def _agencies(runtime: IssuerRuntime, agency: str | None) -> list[str]:
    from issuer.audit import AuditLog
    from registry.certificate.identifiers import parse_uscc

    if agency:
        return [parse_uscc(agency).code]
    # Every agency served here, not only those with entries left: a trail deleted whole (its
    # rows, its head and its anchor records) is then an agency whose anchored heads, on chain,
    # name entries the log no longer has
    from sqlalchemy import select

    from issuer.models import Agency

    with runtime.sessions() as session:
        served = set(session.scalars(select(Agency.code)))
    return sorted(served | set(AuditLog(runtime.sessions).agencies()))


@audit_app.command("verify")
def audit_verify(
    agency: Annotated[
        str | None, typer.Option(help="Only this agency's log (统一社会信用代码); default every agency's.")
    ] = None,
    no_chain: Annotated[
        bool,
        typer.Option(
            "--no-chain",
            help="Check anchored heads against the database's record only, without asking the chain "
            "(which also catches a log re-hashed after a change, and a record of anchors removed).",
        ),
    ] = False,
) -> None:
    """Check each agency's hash chain and anchored heads; name the first broken link.

    Every entry's hash and link to the one before, no entry missing, and every head anchored
    on chain still the hash of the entry it names. Exit status 0: every log holds. 1: a log is broken; the first broken link (entry, row id and
    why: changed, unlinked, removed, rewritten before an anchor) is printed.
    """
    from issuer.audit import AuditLog
    from issuer.runtime import IssuerRuntime

    runtime = IssuerRuntime.open()
    try:
        audit = AuditLog(runtime.sessions)
        agencies = _agencies(runtime, agency)
        registry = None if no_chain else runtime.workspace.registry
        deployed = 0 if registry is None else runtime.workspace.deployment.block_number  # no earlier head
        results = [
            audit.verify(
                code,
                chain_heads=registry.audit_heads(code, from_block=deployed) if registry is not None else (),
            )
            for code in agencies
        ]
    finally:
        runtime.close()
    if not results:
        console.print("no audit log yet")
        return
    for result in results:
        if result.broken is None:
            head = f", head {result.head}" if result.head else ""
            console.print(
                f"OK      {result.agency}: {result.count} entries{head}, "
                f"{result.anchors_checked} anchored head(s) checked"
                + (" (database record only)" if no_chain else "")
            )
        else:
            link = result.broken
            console.print(
                f"BROKEN  {result.agency}: first broken link at entry {link.seq}"
                + (f" (id {link.id})" if link.id is not None else "")
                + f": {link.reason}\n        {link.message}"
            )
    if any(not result.ok for result in results):
        raise typer.Exit(1)


def _moment(text: str | None, *, end: bool = False) -> dt.datetime | None:
    """An ISO date or date-time (UTC unless it says); a bare date as `--to` takes in its whole day."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day + dt.timedelta(days=1 if end else 0), dt.time(), dt.UTC)
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise EcertError(
            f"Not a date or time: {text!r} (use 2026-12-01 or 2026-12-01T08:00:00+08:00)",
            code=ErrorCode.REQUEST_INVALID,
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@audit_app.command("export")
def audit_export(
    agency: Annotated[str, typer.Option(help="The agency whose log is exported (统一社会信用代码).")],
    fmt: Annotated[str, typer.Option("--format", help="csv (one header row) or jsonl (one object a line).")],
    since: Annotated[
        str | None,
        typer.Option("--from", help="From this date or time, inclusive (ISO 8601; UTC unless given)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--to", help="Up to this time, exclusive; a bare date (2026-12-31) includes that whole day."
        ),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option(help="Only this actor: a staff username, api-key:<id>, cli:<user> or system."),
    ] = None,
    action: Annotated[
        str | None,
        typer.Option(help="Only this action: sign_in, sign_in_failed, issue, unmask, approve, key_change…"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write to this file (made 0600) instead of standard output.", dir_okay=False),
    ] = None,
) -> None:
    """Export an agency's entries as CSV or JSON Lines, filtered.

    In order, with their hashes (so a copy can be checked against the chain). Entries name
    certificates by identifier, never a holder."""
    from issuer.audit import AuditLog, export_lines
    from issuer.runtime import IssuerRuntime
    from registry.certificate.identifiers import parse_uscc

    if fmt not in ("csv", "jsonl"):
        raise EcertError(f"Unknown format {fmt!r}: use csv or jsonl", code=ErrorCode.REQUEST_INVALID)
    code = parse_uscc(agency).code
    start, end = _moment(since), _moment(until, end=True)
    runtime = IssuerRuntime.open()
    written = 0
    try:
        entries = AuditLog(runtime.sessions).entries(code, since=start, until=end, actor=actor, action=action)
        if out is None:
            for line in export_lines(entries, fmt):
                sys.stdout.write(line)
                written += 1
            sys.stdout.flush()
        else:
            fd = os.open(
                out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600
            )  # staff names, actions: not public
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                os.fchmod(fd, 0o600)
                for line in export_lines(entries, fmt):
                    handle.write(line)
                    written += 1
    finally:
        runtime.close()
    if out is not None:
        rows = written - 1 if fmt == "csv" else written
        err.print(f"exported {rows} entries of {code} to {out}")


@audit_app.command("anchor")
def audit_anchor(
    agency: Annotated[
        str | None,
        typer.Option(help="Only this agency; default every agency with a log whose key is in the keystore."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Anchor the head even if that very head is anchored already.")
    ] = False,
) -> None:
    """Anchor each agency's log head on chain now.

    Signed with the agency's key. The issuer's worker also anchors a head that moved by itself,
    every ECERT_ISSUER_AUDIT_ANCHOR_INTERVAL_H hours (default 24)."""
    from issuer.audit import AuditLog
    from issuer.runtime import IssuerRuntime
    from registry.errors import KeystoreError

    runtime = IssuerRuntime.open()
    try:
        audit = AuditLog(runtime.sessions)
        for code in _agencies(runtime, agency):
            try:
                signer = runtime.signers(code)
            except KeystoreError:
                if agency:
                    raise
                err.print(f"{code}: no key in this keystore, skipped")
                continue
            record = audit.anchor(code, runtime.workspace.registry, signer, force=force)
            if record is None:
                seq, _ = audit.head(code)
                console.print(
                    f"{code}: nothing to anchor"
                    + (f" (entry {seq} is anchored already)" if seq else " (empty log)")
                )
            else:
                console.print(
                    f"{code}: anchored entry {record.seq}, head {record.head}, in tx {record.tx_hash} (block {record.block_number})"
                )
    finally:
        runtime.close()
