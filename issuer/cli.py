"""Agency commands: `ecert issue` and `ecert status`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from registry.certificate.model import Issuer
from registry.contracts.certificate_registry import Status
from registry.errors import EcertError
from registry.qr import qr_png
from registry.workspace import Workspace, agency_key_name
from issuer.batch import IssuedBatch, build_batch
from issuer.ledger import Ledger
from issuer.records import read_records

console = Console()
status_app = typer.Typer(help="Suspend, reinstate or revoke issued certificates.", no_args_is_help=True)
STATUS_NAMES = {"active": Status.ACTIVE, "suspended": Status.SUSPENDED, "revoked": Status.REVOKED}
# GB status codes: 01 有效, 02 暂扣, 03 撤销, 04 注销, 07 吊销, 99 其他.
REASONS = {Status.ACTIVE: {1, 99}, Status.SUSPENDED: {2, 99}, Status.REVOKED: {3, 4, 7, 99}}


def register(app: typer.Typer) -> None:
    app.command("issue")(issue)
    app.add_typer(status_app, name="status")
    app.command("demo")(demo)


def demo() -> None:
    """Start a local chain with a registry, authorities, agencies and sample certificates."""
    from issuer.demo import run_demo

    out = run_demo(Workspace())
    first = sorted(out.glob("*.json"))[0]
    console.print(f"\n[bold]ecert demo is up.[/bold] Sample holder packages and QR codes: {out}")
    console.print(f"  verify one:      ecert verify '{first}'")
    console.print(f"  suspend it:      ecert status set {first.stem} --status suspended --reason 2")
    console.print("  stop the chain:  ecert chain down")


def _chunks(records: Iterator[dict], size: int) -> Iterator[list[dict]]:
    while chunk := list(islice(records, size)):
        yield chunk


def issue(
    agency: Annotated[str, typer.Option(help="The issuing agency's 统一社会信用代码 (its key must be in the keystore).")],
    type_code: Annotated[str, typer.Option("--type", help="Certificate type code (21 chars) the agency is granted.")],
    input_file: Annotated[Path, typer.Option("--input", help="Records as .jsonl or .csv (dotted headers: holder.name, …).", exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option(help="Folder for the holder packages (*.json).")],
    type_name: Annotated[str, typer.Option("--name", help="The certificate's name when records give none.")] = "电子证照",
    qr: Annotated[bool, typer.Option("--qr", help="Also write a QR PNG of each package's EC1: code.")] = False,
    batch_size: Annotated[int, typer.Option(help="Certificates per anchored batch.", min=1)] = 10_000,
) -> None:
    """Build, seal, batch and anchor certificates; write one holder package per certificate."""
    ws = Workspace()
    registry = ws.registry
    info = registry.agency(agency)
    issuer = Issuer(info.name, info.code, str(info.region))
    out.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(ws.settings.home / "issuer" / "ledger.sqlite")
    issued = rejected = 0
    records = read_records(input_file)
    columns = (TextColumn("[bold]issuing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with ws.keystore.unlocked(agency_key_name(agency)) as key, Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("issue", total=None)
        for chunk in _chunks(records, batch_size):
            batch = build_batch(
                chunk, type_code=type_code, type_name=type_name, issuer=issuer, signing_key=bytes(key.key),
                chain_id=ws.deployment.chain_id, registry=registry.address,
            )  # fmt: skip
            if len(batch):
                receipt = registry.anchor(key, batch.root, len(batch), type_code)
                _write(batch.with_anchor(receipt.tx_hash), out, qr)
                ledger.record(
                    (f["identifier"], agency, type_code, batch.root, i, p.digest, receipt.tx_hash)
                    for i, (f, p) in enumerate(zip(batch.fields, batch.presentations))
                )
            rejected += _report_rejected(batch, out, offset=issued + rejected)
            issued += len(batch)
            bar.update(task, advance=len(chunk))
    ledger.close()
    console.print(f"issued {issued} certificate(s) into {out}" + (f", {rejected} record(s) rejected (see rejected.jsonl)" if rejected else ""))
    if rejected:
        raise typer.Exit(1)


def _write(batch: IssuedBatch, out: Path, qr: bool) -> None:
    for fields, presentation in zip(batch.fields, batch.presentations):
        stem = fields["identifier"]
        (out / f"{stem}.json").write_text(json.dumps(presentation.to_json(), ensure_ascii=False, indent=1))
        if qr:
            (out / f"{stem}.png").write_bytes(qr_png(presentation.to_ec1()))


def _report_rejected(batch: IssuedBatch, out: Path, offset: int) -> int:
    if not batch.rejected:
        return 0
    with (out / "rejected.jsonl").open("a", encoding="utf-8") as handle:
        for r in batch.rejected:
            line = {"record": offset + r.position, "code": r.code, "field": r.field, "message": r.message}
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    return len(batch.rejected)


@status_app.command("set")
def status_set(
    identifier: Annotated[str, typer.Argument(help="The certificate's e-licence identifier.")],
    status: Annotated[str, typer.Option(help="active (reinstate), suspended or revoked (final).")],
    reason: Annotated[int, typer.Option(help="GB reason code: 01 有效, 02 暂扣, 03 撤销, 04 注销, 07 吊销, 99 其他.")],
) -> None:
    """Change one certificate's status on chain (signed with its agency's key)."""
    wanted = STATUS_NAMES.get(status.lower())
    if wanted is None:
        raise EcertError(f"Unknown status {status!r}: use active, suspended or revoked", code="STATUS_INVALID")
    if reason not in REASONS[wanted]:
        raise EcertError(f"Reason {reason:02d} does not fit {status}: use one of {sorted(REASONS[wanted])}", code="REASON_INVALID")
    ws = Workspace()
    ledger = Ledger(ws.settings.home / "issuer" / "ledger.sqlite")
    entry = ledger.find(identifier)
    ledger.close()
    with ws.keystore.unlocked(agency_key_name(entry.agency)) as key:
        receipt = ws.registry.set_status(key, entry.root, entry.index, wanted, reason)
    console.print(f"{identifier}: {status} (reason {reason:02d}) in block {receipt.block_number}")
