"""Verifier commands: `ecert verify`, `ecert serve verifier`, `ecert verifier org add|list|revoke|rotate-key`.

Only typer and rich are imported here; the checks, the chain reader and the node's runtime are
imported inside the commands, so `ecert --help` does not pay for web3 or SQLAlchemy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from registry.cli import command_group
from registry.error_codes import ErrorCode
from registry.errors import ChainError, EcertError
from registry.workspace import Workspace

if TYPE_CHECKING:
    from registry.certificate.presentation import Presentation
    from verifier.context import ChainReader
    from verifier.orgs import Organisations
    from verifier.pipeline import Report
    from verifier.runtime import VerifierRuntime
    from verifier.settings import VerifierSettings

console = Console(soft_wrap=True)
EXIT_CODES = {"VALID": 0, "INVALID": 1, "ERROR": 2}  # by verdict
MARKS = {
    "VALID": "[green]✔[/green]",
    "INVALID": "[red]✘[/red]",
    "ERROR": "[yellow]![/yellow]",
    "SKIPPED": "·",
}
COLOURS = {"VALID": "green", "INVALID": "red", "ERROR": "yellow"}
verifier_app = command_group("Verifier node administration: organisations and their API keys.")
org_app = command_group("Organisations (banks, agencies, wallets, nodes) that call this node.")
verifier_app.add_typer(org_app, name="org")
staff_app = command_group(
    "Front-desk staff of the organisations: sign in at /desk with a password and a TOTP code."
)
verifier_app.add_typer(staff_app, name="staff")
trust_app = command_group("Trust snapshots for offline verification, and the node key that signs them.")


def register(app: typer.Typer) -> None:
    from registry.cli import serve_app

    app.command("verify")(verify)
    app.add_typer(verifier_app, name="verifier")
    app.add_typer(trust_app, name="trust")
    serve_app.command("verifier")(serve_verifier)


def _node_settings(region: str | None) -> VerifierSettings:
    """The node's settings, `region` (when given) over ECERT_VERIFIER_REGION."""
    from verifier.settings import VerifierSettings

    return VerifierSettings(region=region) if region else VerifierSettings()


def serve_verifier(
    region: Annotated[
        str | None,
        typer.Option(help="The node's region (GB/T 2260), e.g. 330000; default ECERT_VERIFIER_REGION."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8002,
    workers: Annotated[
        int, typer.Option(help="HTTP worker processes (the indexer runs once, in the main process).", min=1)
    ] = 1,
) -> None:
    """Run a verifier node (API, share pages, indexer) until interrupted."""
    import os

    from verifier.serve import serve

    if "ECERT_VERIFIER_PUBLIC_URL" not in os.environ:  # share links point at this node unless told otherwise
        os.environ["ECERT_VERIFIER_PUBLIC_URL"] = f"http://{host}:{port}"
    settings = _node_settings(region)
    console.print(f"verifier node {settings.region} on http://{host}:{port} (docs: /docs)")
    serve(settings, host, port, workers)


@org_app.command("add")
def org_add(
    name: Annotated[str, typer.Option(help="The organisation's name, e.g. 某某银行杭州分行.")],
    region: Annotated[str, typer.Option(help="Its region (GB/T 2260).")],
    kind: Annotated[str, typer.Option(help="bank, agency, wallet or node.")] = "bank",
    node_region: Annotated[
        str | None, typer.Option("--node", help="The verifier node's region (default ECERT_VERIFIER_REGION).")
    ] = None,
) -> None:
    """Register an organisation at this node and print its API key (shown once)."""
    from verifier.runtime import VerifierRuntime

    runtime = VerifierRuntime.open(settings=_node_settings(node_region))
    try:
        org_id, token = runtime.organisations.add(name, region, kind)
    finally:
        runtime.close()
    console.print(f"organisation {org_id} ({name}, {kind}, {region})")
    print(token)


NodeOption = Annotated[
    str | None, typer.Option("--node", help="The verifier node's region (default ECERT_VERIFIER_REGION).")
]


def _organisations(node_region: str | None) -> tuple[VerifierRuntime, Organisations]:
    from verifier.runtime import VerifierRuntime

    runtime = VerifierRuntime.open(settings=_node_settings(node_region))
    return runtime, runtime.organisations


@org_app.command("list")
def org_list(node_region: NodeOption = None) -> None:
    """The organisations registered at this node, with how many working keys each has."""
    runtime, organisations = _organisations(node_region)
    try:
        views = organisations.list()
    finally:
        runtime.close()
    for view in views:
        console.print(f"{view.id:>5}  {view.kind:<7} {view.region}  {view.active_keys} key(s)  {view.name}")


@org_app.command("revoke")
def org_revoke(
    org_id: Annotated[
        int | None,
        typer.Option("--id", help="Revoke every key of this organisation (`ecert verifier org list`)."),
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="Or revoke just this key (vk_…), e.g. one that leaked.")
    ] = None,
    node_region: NodeOption = None,
) -> None:
    """Revoke an organisation's API keys: every worker of a running node refuses them within seconds."""
    if (org_id is None) == (key is None):
        raise EcertError(
            "Give exactly one of --id (every key of an organisation) or --key (that key)",
            code=ErrorCode.ORG_REVOKE_TARGET,
            field="id",
        )
    runtime, organisations = _organisations(node_region)
    try:
        if key is not None:
            caller = organisations.revoke_key(key)
            console.print(f"revoked that key of organisation {caller.organisation_id} ({caller.name})")
        elif org_id is not None:  # exactly one of the two, as checked above
            count = organisations.revoke(org_id)
            console.print(f"revoked {count} key(s) of organisation {org_id}")
    finally:
        runtime.close()


@staff_app.command("add")
def staff_add(
    org_id: Annotated[int, typer.Option("--org", help="The organisation (`ecert verifier org list`).")],
    username: Annotated[str, typer.Option(help="The sign-in name: a-z 0-9 . _ -.")],
    name: Annotated[str, typer.Option(help="The person's name as the access log shows it, e.g. 王芳.")] = "",
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from the first line of standard input."),
    ] = False,
    node_region: NodeOption = None,
) -> None:
    """Add a staff member and print the TOTP secret and provisioning URI (shown once: add it to
    an authenticator app now)."""
    import sys

    password = (
        sys.stdin.readline().rstrip("\n")
        if password_stdin
        else typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    )
    runtime = _runtime(node_region)
    try:
        made = runtime.staff.add(org_id, username, name or username, password)
    finally:
        runtime.close()
    console.print(f"staff member {made.id} ({made.username}) of organisation {org_id}")
    console.print("TOTP secret and provisioning URI, shown once:")
    print(made.secret)
    print(made.uri)


@staff_app.command("list")
def staff_list(
    org_id: Annotated[int | None, typer.Option("--org", help="Only this organisation's staff.")] = None,
    node_region: NodeOption = None,
) -> None:
    """Staff members, with their organisation and whether they are disabled."""
    runtime = _runtime(node_region)
    try:
        members = runtime.staff.members(org_id)
    finally:
        runtime.close()
    for m in members:
        state = "disabled" if m.disabled else "active"
        console.print(
            f"{m.id:>5}  {m.username:<20} {state:<8} {m.display_name}  ({m.organisation_id} {m.organisation})"
        )


@staff_app.command("disable")
def staff_disable(
    staff_id: Annotated[int, typer.Option("--id", help="The staff member (`ecert verifier staff list`).")],
    node_region: NodeOption = None,
) -> None:
    """Refuse a staff member's sign-ins from now on and end their sessions."""
    runtime = _runtime(node_region)
    try:
        member = runtime.staff.disable(staff_id)
    finally:
        runtime.close()
    console.print(f"disabled staff member {member.id} ({member.username}) and ended their sessions")


def _runtime(node_region: str | None) -> VerifierRuntime:
    from verifier.runtime import VerifierRuntime

    return VerifierRuntime.open(settings=_node_settings(node_region))


@org_app.command("rotate-key")
def org_rotate_key(
    org_id: Annotated[int, typer.Option("--id", help="The organisation (`ecert verifier org list`).")],
    grace_minutes: Annotated[
        int,
        typer.Option(
            help="Minutes its current keys keep working, to switch over without downtime (0: stop now).",
            min=0,
        ),
    ] = 0,
    node_region: NodeOption = None,
) -> None:
    """Give an organisation a new API key (printed once) and retire its current ones."""
    import datetime as dt

    runtime, organisations = _organisations(node_region)
    try:
        token = organisations.rotate_key(org_id, grace=dt.timedelta(minutes=grace_minutes))
    finally:
        runtime.close()
    when = f"in {grace_minutes} minute(s)" if grace_minutes else "now"
    console.print(f"new key for organisation {org_id}; its previous keys stop working {when}")
    print(token)


def verify(
    source: Annotated[
        str,
        typer.Argument(
            help="A holder package (.json), a QR image (.png/.jpg), an EC1:… string or a link <node>/v#EC1:…."
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    offline: Annotated[
        Path | None,
        typer.Option(
            "--offline",
            metavar="SNAPSHOT_FILE",
            help="Verify with no network, from this signed trust snapshot.",
        ),
    ] = None,
    trust_key: Annotated[
        Path | None,
        typer.Option(
            "--trust-key",
            metavar="PEM_FILE",
            help="The node key the snapshot must be signed with (`ecert trust key`).",
        ),
    ] = None,
    delta: Annotated[
        list[Path] | None,
        typer.Option(
            "--delta",
            metavar="DELTA_FILE",
            help="With --offline: a delta of the same node to apply to the snapshot (`ecert trust snapshot --since`); "
            "repeat, oldest first.",
        ),
    ] = None,
) -> None:
    """Verify a certificate. Exit 0 valid, 1 invalid, 2 could not verify (e.g. chain unreachable)."""
    from verifier.chain_reader import RegistryReader
    from verifier.inputs import load_presentation

    try:
        presentation = load_presentation(source)
    except EcertError as exc:
        _fail(as_json, exc.code, exc.message, 1)
    if offline is not None or trust_key is not None or delta:
        _verify_offline(presentation, offline, trust_key, as_json, delta or [])
    reader = None
    ws = Workspace()
    try:
        reader = RegistryReader(ws.registry)
    except ChainError as exc:
        console.print(f"[yellow]chain: {exc.message}[/yellow]") if not as_json else None
    except EcertError as exc:
        _fail(as_json, exc.code, exc.message, 2)
    report = _run(presentation, reader)
    _print(report, as_json)
    raise typer.Exit(EXIT_CODES[report.verdict.value])


def _run(presentation: Presentation, reader: ChainReader | None) -> Report:
    """Verify through the service every channel of a node uses (`VerificationService`), locally:
    the same checks, required kinds and verdict as the API, with no receipt or access log."""
    from verifier.service import VerificationService, Who

    service = VerificationService.local(reader)
    who = Who("ecert verify", "")
    return service.verify(
        presentation, who=who, purpose="ecert verify", channel="cli", request_digest=b""
    ).report


def _print(report: Report, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
        return
    for check in report.checks:
        console.print(
            f"{MARKS[check.outcome.value]} {check.kind:<10} {check.outcome.value:<8} {check.code:<24} {check.message}"
        )
    colour = COLOURS[report.verdict.value]
    suffix = f" ({report.reason})" if report.reason else ""
    console.print(f"[bold {colour}]verdict: {report.verdict.value}{suffix}[/bold {colour}]")


def _fail(as_json: bool, code: ErrorCode, message: str, exit_code: int) -> NoReturn:
    if as_json:
        print(
            json.dumps(
                {"verdict": "INVALID" if exit_code == 1 else "ERROR", "reason": code, "message": message},
                ensure_ascii=False,
            )
        )
    else:
        console.print(f"[red]cannot read the certificate [{code}]: {message}[/red]")
    raise typer.Exit(exit_code)


# ─── offline ─────────────────────────────────────────────────────────────────────────────


def _verify_offline(
    presentation: Presentation, snapshot_file: Path | None, trust_key: Path | None, as_json: bool,
    deltas: list[Path],
) -> NoReturn:  # fmt: skip
    """`verify --offline`: no chain, no settings; the snapshot and its deltas must be signed by the pinned key."""
    from verifier.offline import SnapshotReader, explain_offline, offline_json, offline_summary
    from verifier.snapshot_delta import load_with_deltas

    if snapshot_file is None or trust_key is None:
        _offline_error(as_json, ErrorCode.TRUST_KEY_MISSING if trust_key is None else ErrorCode.SNAPSHOT_MISSING,
                       "Offline verification needs both --offline SNAPSHOT_FILE and --trust-key PEM_FILE (the node key, `ecert trust key`)")  # fmt: skip
    try:
        pem = trust_key.read_bytes()
    except OSError as exc:
        _offline_error(
            as_json, ErrorCode.TRUST_KEY_INVALID, f"Cannot read the trusted key {trust_key}: {exc.strerror}"
        )
    try:
        snapshot = load_with_deltas(snapshot_file, deltas, pem)
    except EcertError as exc:
        _offline_error(as_json, exc.code, exc.message)
    report = explain_offline(_run(presentation, SnapshotReader(snapshot)), snapshot)
    if as_json:
        print(
            json.dumps(
                {**report.to_json(), **offline_json(snapshot, report.checked_at)},
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        console.print(
            f"[bold]{offline_summary(snapshot, report.checked_at)}[/bold] (node {snapshot.region}, key {snapshot.key_id})"
        )
        _print(report, as_json)
    raise typer.Exit(EXIT_CODES[report.verdict.value])


def _offline_error(as_json: bool, code: ErrorCode, message: str) -> NoReturn:
    if as_json:
        print(
            json.dumps(
                {"verdict": "ERROR", "reason": code, "message": message, "mode": "offline"},
                ensure_ascii=False,
            )
        )
    else:
        console.print(f"[yellow]cannot verify offline [{code}]: {message}[/yellow]")
    raise typer.Exit(2)


@trust_app.command("snapshot")
def trust_snapshot(
    region: Annotated[
        str | None, typer.Option(help="The node's region (GB/T 2260); default ECERT_VERIFIER_REGION.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Where to write it (default <home>/verifier-<region>/trust-snapshot.json.gz)."),
    ] = None,
    covering: Annotated[
        list[str] | None,
        typer.Option(
            "--covering",
            metavar="REGION",
            help="Hold only the batches of agencies in this region (GB/T 2260, e.g. 330000 or 3301xx; repeat for "
            "more): a region's snapshot for its offline counters. Default: every region.",
        ),
    ] = None,
    since: Annotated[
        Path | None,
        typer.Option(
            "--since",
            metavar="FILE",
            help="Write only what changed since this snapshot or delta of this node (a signed delta, kilobytes a "
            "day), with its regions. Counters apply deltas in order: `ecert verify --offline S --delta D …`.",
        ),
    ] = None,
) -> None:
    """Sync the node's index to the head and write a signed trust snapshot for offline verification
    (or, with --since, a delta to the last one)."""
    from verifier.runtime import VerifierRuntime
    from verifier.snapshot import write_snapshot

    if since is not None and covering:
        console.print("[red]--since takes its regions from the base snapshot: leave out --covering[/red]")
        raise typer.Exit(2)
    runtime = VerifierRuntime.open(settings=_node_settings(region))
    try:
        path, document = write_snapshot(runtime, out, regions=covering or (), since=since)
    except EcertError as exc:
        console.print(f"[red]cannot write the snapshot [{exc.code}]: {exc.message}[/red]")
        raise typer.Exit(2) from None
    finally:
        runtime.close()
    body = document["snapshot"]
    scope = ", ".join(body.get("scope", {}).get("regions", []))
    what = f"trust snapshot delta since block {body['base']['block']}" if "base" in body else "trust snapshot"
    console.print(
        f"{what} {path}: block {body['block']['number']}, {len(body['agencies'])} agencies, {len(body['keys'])} keys, "
        f"{len(body['batches'])} batches{f' of regions {scope}' if scope else ''}, {path.stat().st_size} bytes; "
        f"signed by key {body['node']['keyId']} (node {body['node']['region']})",
        soft_wrap=True,
    )


@trust_app.command("key")
def trust_key_command(
    region: Annotated[
        str | None, typer.Option(help="The node's region (GB/T 2260); default ECERT_VERIFIER_REGION.")
    ] = None,
) -> None:
    """Print the node's Ed25519 public key (PEM), which signs its receipts and snapshots, for verifiers to pin."""
    from verifier.snapshot import node_signer

    signer = node_signer(_node_settings(region), Workspace().settings)
    print(signer.public_key_pem(), end="")
