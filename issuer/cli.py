"""Agency commands: `ecert issue`, `ecert status set`, `ecert demo`, `ecert serve issuer`,
`ecert issuer api-key`. They go through the same service layer as the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from issuer.runtime import IssuerRuntime
from issuer.service import JobView
from issuer.records import read_records
from registry.certificate.identifiers import parse_licence_id
from registry.contracts.certificate_registry import Status
from registry.errors import EcertError
from registry.qr import qr_png

console = Console()
status_app = typer.Typer(help="Suspend, reinstate or revoke issued certificates.", no_args_is_help=True)
STATUS_NAMES = {"active": Status.ACTIVE, "suspended": Status.SUSPENDED, "revoked": Status.REVOKED}
JOB_RECORDS = 100_000  # records per stored job when a file is issued


def register(app: typer.Typer) -> None:
    app.command("issue")(issue)
    app.add_typer(status_app, name="status")
    app.command("demo")(demo)
    from issuer.serve import register as register_serve  # `ecert serve issuer`, `ecert issuer api-key …`

    register_serve(app)


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
) -> None:
    """Store, seal, batch and anchor certificates, then write one holder package per certificate."""
    runtime = IssuerRuntime.open()
    runtime.register_agency(agency)
    out.mkdir(parents=True, exist_ok=True)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    jobs: list[JobView] = []
    with Progress(*columns, console=console, transient=True) as bar:
        stored = bar.add_task("stored", total=None)
        for chunk in _chunks(read_records(input_file), JOB_RECORDS):
            jobs.append(runtime.service.submit(agency, type_code, chunk, type_name=type_name))
            bar.update(stored, advance=len(chunk))
        bar.update(stored, description="anchoring")
        runtime.worker.run_until_idle()
    issued = rejected = 0
    for job in jobs:
        for identifier, presentation in runtime.service.job_packages(agency, job.id):
            (out / f"{identifier}.json").write_text(json.dumps(presentation.to_json(), ensure_ascii=False, indent=1))
            if qr:
                (out / f"{identifier}.png").write_bytes(qr_png(presentation.to_ec1()))
            issued += 1
        rejected += _report_rejected(runtime.service.job(agency, job.id), out)
    runtime.close()
    suffix = f", {rejected} record(s) rejected (see rejected.jsonl)" if rejected else ""
    console.print(f"issued {issued} certificate(s) into {out}{suffix}")
    if rejected:
        raise typer.Exit(1)


def _report_rejected(job: JobView, out: Path) -> int:
    if not job.errors:
        return 0
    with (out / "rejected.jsonl").open("a", encoding="utf-8") as handle:
        for error in job.errors:
            handle.write(json.dumps({"record": error["position"], **{k: error[k] for k in ("code", "field", "message")}}, ensure_ascii=False) + "\n")
    return len(job.errors)


@status_app.command("set")
def status_set(
    identifier: Annotated[str, typer.Argument(help="The certificate's e-licence identifier.")],
    status: Annotated[str, typer.Option(help="active (reinstate), suspended or revoked (final).")],
    reason: Annotated[int, typer.Option(help="GB reason code: 01 有效, 02 暂扣, 03 撤销, 04 注销, 07 吊销, 99 其他.")],
    note: Annotated[str | None, typer.Option(help="A note kept with the change.")] = None,
) -> None:
    """Change one certificate's status on chain (signed with its agency's key)."""
    wanted = STATUS_NAMES.get(status.lower())
    if wanted is None:
        raise EcertError(f"Unknown status {status!r}: use active, suspended or revoked", code="STATUS_INVALID")
    agency = parse_licence_id(identifier).issuer
    runtime = IssuerRuntime.open()
    done = runtime.status.change(agency, identifier, wanted, reason, note)
    runtime.close()
    console.print(f"{identifier}: {status} (reason {reason:02d}) in block {done['block']}")


def demo() -> None:
    """Start everything with demo data: chain, registry, issuer API, verifier node, holder wallet."""
    from issuer.demo import run_demo
    from registry.workspace import Workspace

    run_demo(Workspace())
