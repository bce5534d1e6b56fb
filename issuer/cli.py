"""Agency commands: `ecert issue`, `ecert status set`, `ecert demo`, `ecert serve issuer`,
`ecert issuer api-key`. They go through the same service layer as the API.

Only typer and rich are imported here: the runtime (SQLAlchemy, web3) is imported inside each
command, so `ecert --help` does not pay for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from issuer.cli_staff import staff_app
from registry.cli import command_group
from registry.error_codes import ErrorCode
from registry.errors import EcertError

if TYPE_CHECKING:
    from issuer.runtime import IssuerRuntime
    from issuer.service import JobView
    from registry.progress import StageTally

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
status_app = command_group("Suspend, reinstate or revoke issued certificates.")
api_key_app = command_group("API keys of agency staff (one agency, scopes issue/status/admin).")
STATUS_NAMES = ("active", "suspended", "revoked")
JOB_RECORDS = 100_000  # records per stored job when a file is issued
STAGES = ("stored", "sealed", "anchored", "confirmed")
PAST = {
    "sealed": ("sealed", "anchored", "confirmed", "refused"),
    "anchored": ("anchored", "confirmed"),
    "confirmed": ("confirmed",),
}


def register(app: typer.Typer) -> None:
    from issuer.audit_cli import register as register_audit  # typer and rich only, as this module

    register_audit(app)  # `ecert audit verify|export|anchor`
    app.command("issue")(issue)
    app.add_typer(status_app, name="status")
    app.command("demo")(demo)
    group(app, "serve", "Run a service: the issuer API, the verifier…").command("issuer")(serve_issuer)
    issuer_group = group(app, "issuer", "The issuer service: API keys for systems, staff for the console.")
    issuer_group.add_typer(api_key_app, name="api-key")
    issuer_group.add_typer(staff_app, name="staff")
    issuer_group.command("reindex")(reindex)
    from issuer.cli_dashboard import register as register_dashboard

    register_dashboard(issuer_group)  # `ecert issuer dashboard`


def group(app: typer.Typer, name: str, help: str) -> typer.Typer:
    """The sub-command group `name` of `app`, made if no room registered it yet (`serve` is shared)."""
    for info in app.registered_groups:
        if info.name == name and info.typer_instance is not None:
            return info.typer_instance
    made = command_group(help)
    app.add_typer(made, name=name)
    return made


# ─── issue ───────────────────────────────────────────────────────────────────────────────


def _chunks(records: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    while chunk := list(islice(records, size)):
        yield chunk


def issue(
    agency: Annotated[
        str, typer.Option(help="The issuing agency's 统一社会信用代码 (its key must be in the keystore).")
    ],
    type_code: Annotated[
        str, typer.Option("--type", help="Certificate type code (21 chars) the agency is granted.")
    ],
    input_file: Annotated[
        Path,
        typer.Option(
            "--input",
            help="Records as .jsonl or .csv (dotted headers: holder.name, …).",
            exists=True,
            dir_okay=False,
        ),
    ],
    out: Annotated[Path, typer.Option(help="Folder for the holder packages (*.json).")],
    type_name: Annotated[
        str, typer.Option("--name", help="The certificate's name when records give none.")
    ] = "电子证照",
    qr: Annotated[
        bool,
        typer.Option(
            "--qr", help="Also write a QR PNG of each package: a link <ECERT_ISSUER_VERIFIER_URL>/v#EC1:…."
        ),
    ] = False,
) -> None:
    """Store, seal, batch and anchor certificates, then write one holder package per certificate.

    Shows records stored, sealed, anchored and confirmed as it goes (bars on a terminal, plain
    lines otherwise), and waits only for this run's certificates.
    """
    from issuer.records import read_records
    from issuer.runtime import IssuerRuntime
    from registry.progress import StageTally

    runtime = IssuerRuntime.open()
    try:
        runtime.register_agency(agency)
        if not runtime.workspace.registry.is_granted(
            agency, type_code
        ):  # as the API: refused before intake, not at anchoring
            raise EcertError(
                f"Agency {agency} is not granted type {type_code}: ask the regional authority to grant it",
                code=ErrorCode.TYPE_NOT_GRANTED, field="type",
            )  # fmt: skip
        _out_folder(out)
        jobs: list[JobView] = []
        with StageTally(err, STAGES) as tally:
            for chunk in _chunks(read_records(input_file), JOB_RECORDS):
                tally.add_total(len(chunk))
                jobs.append(runtime.service.submit(agency, type_code, chunk, type_name=type_name))
                tally.update({"stored": sum(job.total - len(job.errors) for job in jobs)})
            wanted = [job.id for job in jobs]
            runtime.worker.run_until_idle(
                job_ids=wanted, on_pass=lambda: _tally_jobs(runtime, agency, wanted, tally)
            )
            _tally_jobs(runtime, agency, wanted, tally)
        issued, rejected = _write_packages(runtime, agency, jobs, out, qr=qr)
        refusals = [r for job in jobs for r in runtime.service.job(agency, job.id).refusals]
    finally:
        runtime.close()
    for refusal in refusals:
        err.print(
            f"the chain refused batch {refusal['batchRoot']} ({refusal['count']} certificate(s), not retried): {refusal['message']}"
        )
    refused = sum(r["count"] for r in refusals)
    suffix = f", {rejected} record(s) rejected (see rejected.jsonl)" if rejected else ""
    suffix += f", {refused} refused by the chain" if refused else ""
    console.print(f"issued {issued} certificate(s) into {out}{suffix}", soft_wrap=True)
    if rejected or refused:
        raise typer.Exit(1)


def _tally_jobs(runtime: IssuerRuntime, agency: str, job_ids: list[str], tally: StageTally) -> None:
    counts = [runtime.service.job(agency, job_id).counts for job_id in job_ids]
    tally.update({stage: sum(c.get(s, 0) for c in counts for s in states) for stage, states in PAST.items()})


def _out_folder(out: Path) -> None:
    """`--out`: made 0700 with any missing parents; a folder that was there keeps its mode, but
    the operator hears if others may read what is written into it."""
    from registry.secrets_files import private_folder

    existed = out.is_dir()
    private_folder(out, tighten=False)
    if existed and out.stat().st_mode & 0o077:
        err.print(f"[yellow]{out} is open to other users (mode {out.stat().st_mode & 0o777:o}): the holder packages in it are 0600, "
                  f"but consider `chmod 700 {out}`[/yellow]")  # fmt: skip


def _write_packages(
    runtime: IssuerRuntime, agency: str, jobs: list[JobView], out: Path, *, qr: bool
) -> tuple[int, int]:
    """One holder package per certificate (and its QR code with `qr`), each 0600: personal data."""
    from registry.certificate.links import verify_link
    from registry.qr import qr_png
    from registry.secrets_files import write_private

    issued = rejected = 0
    for job in jobs:
        for identifier, presentation in runtime.service.job_packages(agency, job.id):
            write_private(
                out / f"{identifier}.json", json.dumps(presentation.to_json(), ensure_ascii=False, indent=1)
            )
            if qr:
                link = verify_link(runtime.settings.verifier_url, presentation.to_ec1())
                write_private(out / f"{identifier}.png", qr_png(link))
            issued += 1
        rejected += _report_rejected(runtime.service.job(agency, job.id), out)
    return issued, rejected


def _report_rejected(job: JobView, out: Path) -> int:
    if not job.errors:
        return 0
    import os

    fd = os.open(
        out / "rejected.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
    )  # the records' errors: 0600 like the packages
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        for error in job.errors:
            handle.write(
                json.dumps(
                    {"record": error["position"], **{k: error[k] for k in ("code", "field", "message")}},
                    ensure_ascii=False,
                )
                + "\n"
            )
    return len(job.errors)


# ─── status ──────────────────────────────────────────────────────────────────────────────


@status_app.command("set")
def status_set(
    identifier: Annotated[str, typer.Argument(help="The certificate's e-licence identifier.")],
    status: Annotated[str, typer.Option(help="active (reinstate), suspended or revoked (final).")],
    reason: Annotated[
        int, typer.Option(help="GB reason code: 01 有效, 02 暂扣, 03 撤销, 04 注销, 07 吊销, 99 其他.")
    ],
    note: Annotated[str | None, typer.Option(help="A note kept with the change.")] = None,
) -> None:
    """Change one certificate's status on chain (signed with its agency's key)."""
    if status.lower() not in STATUS_NAMES:
        raise EcertError(
            f"Unknown status {status!r}: use active, suspended or revoked", code=ErrorCode.STATUS_INVALID
        )
    from issuer.audit import operator_actor
    from issuer.runtime import IssuerRuntime
    from registry.certificate.identifiers import parse_licence_id
    from registry.contracts.certificate_registry import Status

    agency = parse_licence_id(identifier).issuer
    runtime = IssuerRuntime.open()
    try:
        done = runtime.status.change(
            agency, identifier, Status[status.upper()], reason, note, actor=operator_actor()
        )
    finally:
        runtime.close()
    console.print(f"{identifier}: {status} (reason {reason:02d}) in block {done['block']}")


# ─── demo ────────────────────────────────────────────────────────────────────────────────


def _port(service: str, what: str, default: int) -> Any:
    env = f"ECERT_DEMO_{service.upper()}_PORT"
    return typer.Option(
        f"--{service}-port", envvar=env, show_envvar=True, help=f"Port of the {what} (default {default})."
    )


def demo(
    home: Annotated[
        Path | None,
        typer.Option(
            envvar="ECERT_HOME",
            show_envvar=True,
            help="State folder: chain, keys, databases, logs (default ./.ecert).",
        ),
    ] = None,
    chain_port: Annotated[
        int | None,
        typer.Option(
            envvar="ECERT_CHAIN_PORT",
            show_envvar=True,
            help="Port of the local anvil chain (default 8545); the services reach it at http://127.0.0.1:<port> unless ECERT_RPC_URL says otherwise.",
        ),
    ] = None,
    issuer_port: Annotated[int | None, _port("issuer", "issuer API", 8001)] = None,
    verifier_port: Annotated[int | None, _port("verifier", "verifier node", 8002)] = None,
    wallet_port: Annotated[int | None, _port("wallet", "holder wallet", 8003)] = None,
) -> None:
    """Start everything with demo data: chain, registry, issuer API, verifier node, holder wallet.

    Run it again on the same folder and it carries on where it was. For a second demo beside the
    first, give it its own folder and ports, e.g.
    `ecert demo --home /tmp/demo2 --chain-port 8555 --issuer-port 8011 --verifier-port 8012 --wallet-port 8013`.
    Every option can also be set by the environment variable shown beside it.
    """
    import os

    chosen = {"ECERT_HOME": home, "ECERT_CHAIN_PORT": chain_port, "ECERT_DEMO_ISSUER_PORT": issuer_port,
              "ECERT_DEMO_VERIFIER_PORT": verifier_port, "ECERT_DEMO_WALLET_PORT": wallet_port}  # fmt: skip
    os.environ.update({name: str(value) for name, value in chosen.items() if value is not None})
    if chain_port is not None:
        local = f"http://127.0.0.1:{chain_port}"
        given = os.environ.setdefault("ECERT_RPC_URL", local)
        if given.rstrip("/") not in (local, f"http://localhost:{chain_port}"):
            raise EcertError(
                f"ECERT_RPC_URL={given} is not the demo's chain on port {chain_port}: unset it, or make them agree",
                code=ErrorCode.CONFIG_INVALID,
            )
    from issuer.demo import run_demo
    from registry.workspace import Workspace

    if run_demo(Workspace()).failed:
        raise typer.Exit(1)


# ─── serve issuer, api keys ──────────────────────────────────────────────────────────────


def serve_issuer(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8001,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Serve the API only; anchor in another process.")
    ] = False,
) -> None:
    """Serve the issuer API (docs at /docs) and anchor what it takes in; stops on SIGTERM/Ctrl-C."""
    from issuer.serve import serve

    serve(host, port, worker=not no_worker)


@api_key_app.command("create")
def api_key_create(
    agency: Annotated[
        str, typer.Option(help="The agency's 统一社会信用代码 (its key must be in the keystore).")
    ],
    scopes: Annotated[
        str,
        typer.Option(
            help="Comma list of issue, status, admin. A status key changes status at once, without the "
            "console's second person (each change is in the audit log): give it to systems only."
        ),
    ] = "issue",
    label: Annotated[str, typer.Option(help="Who or what holds the key, e.g. a system or a clerk.")] = "",
) -> None:
    """Create a key and print it once (only its SHA-256 is kept)."""
    from issuer.audit import operator_actor
    from issuer.auth import create_api_key
    from issuer.runtime import IssuerRuntime
    from issuer.serve import served_agencies
    from registry.certificate.identifiers import parse_uscc

    runtime = IssuerRuntime.open()
    try:
        code = parse_uscc(agency).code
        if code not in served_agencies(runtime):
            raise EcertError(
                f"Agency {code} has no key in this keystore: run `ecert agency add` first",
                code=ErrorCode.AGENCY_UNKNOWN,
            )
        runtime.register_agency(code)
        token = create_api_key(runtime.sessions, code, scopes, label, actor=operator_actor())
    finally:
        runtime.close()
    err.print(f"API key for {code} ({scopes}); shown once, store it now:")
    print(token)


@api_key_app.command("revoke")
def api_key_revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id (see `ecert issuer api-key list`).")],
) -> None:
    """Revoke a key: it stops working at once."""
    from issuer.audit import operator_actor
    from issuer.auth import revoke_api_key
    from issuer.runtime import IssuerRuntime

    runtime = IssuerRuntime.open()
    try:
        info = revoke_api_key(runtime.sessions, key_id, actor=operator_actor())
    finally:
        runtime.close()
    console.print(f"revoked API key {info.id} of {info.agency_code} ({info.label or 'no label'})")


@api_key_app.command("list")
def api_key_list(
    agency: Annotated[str | None, typer.Option(help="Only this agency's keys.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List keys (never the tokens)."""
    from issuer.auth import list_api_keys
    from issuer.runtime import IssuerRuntime

    runtime = IssuerRuntime.open()
    try:
        keys = list_api_keys(runtime.sessions, agency)
    finally:
        runtime.close()
    if as_json:
        rows = [{"id": k.id, "agency": k.agency_code, "scopes": list(k.scopes), "label": k.label,
                 "createdAt": k.created_at.isoformat(), "revokedAt": k.revoked_at.isoformat() if k.revoked_at else None}
                for k in keys]  # fmt: skip
        print(json.dumps(rows, ensure_ascii=False))
        return
    for k in keys:
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
        console.print(f"{k.id:>4}  {k.agency_code}  {','.join(k.scopes):<18} {state:<24} {k.label}")


# ─── reindex ─────────────────────────────────────────────────────────────────────────────


def reindex(
    agency: Annotated[str | None, typer.Option(help="Only this agency's certificates.")] = None,
    everything: Annotated[
        bool,
        typer.Option(
            "--all", help="Index every certificate again (after a new index key), not only those without."
        ),
    ] = False,
) -> None:
    """Fill the console's search index (keyed digests of numbers, holder names and holder codes)
    for certificates stored before it existed; the service indexes new ones as it takes them in."""
    from issuer.blind_index import blind_index_for
    from issuer.blind_index import reindex as run_reindex
    from issuer.runtime import IssuerRuntime

    runtime = IssuerRuntime.open()
    try:
        data_key = runtime.settings.load_data_key(runtime.workspace.settings)
        done = run_reindex(
            runtime.sessions, blind_index_for(runtime), data_key, agency=agency, everything=everything
        )
    finally:
        runtime.close()
    console.print(f"indexed {done} certificate(s)")
