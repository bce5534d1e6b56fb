"""`ecert`: one command for every room. This module holds the registry's own commands (chain,
deploy, authorities, agencies, identifiers) and gathers the others' through the entry-point
group `ecert.commands`, so `registry` never imports `issuer`, `verifier` or `wallet`.

Importing this module (and every room's `cli`) imports only typer, rich and the pure identifier
checks: web3, eth-account, SQLAlchemy and FastAPI are imported inside the commands that use
them, so `ecert --help` and `ecert id check` answer at once (tests/unit/test_cli_startup.py).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from registry.error_codes import ErrorCode
from registry.errors import EcertError, IdentifierError, KeystoreError
from registry.workspace import ROOT_KEY, Workspace, agency_key_name, authority_key_name

if TYPE_CHECKING:
    from registry.chain.runner import AnvilNode


def command_group(help: str) -> typer.Typer:
    """A group of sub-commands as every room makes them. Help is click's plain text: typer's rich
    help imports rich's Markdown and traceback renderers, 65 ms of every `--help`, and plain text
    copies cleanly into a ticket or a script."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False)


app = command_group("ecert — a blockchain-backed registry for electronic certificates (电子证照).")
chain_app = command_group("Start, stop and inspect the local anvil chain.")
authority_app = command_group("Regional authorities (the root appoints them).")
agency_app = command_group("Agencies, their certificate types and keys.")
id_app = command_group("Check GB identifiers: e-licence ids, 统一社会信用代码, 公民身份号码, regions.")
app.add_typer(chain_app, name="chain")
app.add_typer(authority_app, name="authority")
app.add_typer(agency_app, name="agency")
app.add_typer(id_app, name="id")
# Each room adds its service here: `ecert serve issuer|verifier|wallet`.
serve_app = command_group("Run a service (issuer, verifier, wallet) in the foreground.")
app.add_typer(serve_app, name="serve")

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _node(port: int | None) -> AnvilNode:
    from registry.chain.runner import AnvilNode

    settings = Workspace().settings
    return AnvilNode(settings.chain_dir, port or settings.chain_port)


# ─── chain ───────────────────────────────────────────────────────────────────────────────


@chain_app.command("up")
def chain_up(
    port: Annotated[
        int | None, typer.Option(help="Port on 127.0.0.1 (default ECERT_CHAIN_PORT or 8545).")
    ] = None,
) -> None:
    """Start anvil in the background, its state kept in <home>/chain."""
    node = _node(port)
    pid = node.start()
    console.print(f"chain up: {node.url} (pid {pid}, state {node.state_file})")


@chain_app.command("down")
def chain_down(port: Annotated[int | None, typer.Option(help="Port of the node.")] = None) -> None:
    """Stop anvil, writing its state to disk."""
    stopped = _node(port).stop()
    console.print("chain down" if stopped else "chain was not running")


@chain_app.command("status")
def chain_status() -> None:
    """Say whether the node answers, its chain id and height, and the deployment."""
    ws = Workspace()
    client = ws.client
    console.print(f"node {ws.settings.rpc_url}: chain {client.chain_id}, block {client.block_number()}")
    try:
        console.print(f"registry {ws.deployment.certificate_registry} (root {ws.deployment.root})")
    except EcertError as exc:
        console.print(f"[yellow]{exc.message}[/yellow]")


# ─── deploy ──────────────────────────────────────────────────────────────────────────────


@app.command("deploy")
def deploy_command(
    force: Annotated[
        bool, typer.Option("--force", help="Deploy again even if a deployment exists for this chain.")
    ] = False,
) -> None:
    """Deploy the registry; the root key is created in the keystore if missing."""
    from registry.chain.client import checksum_address
    from registry.deploy import deploy

    ws = Workspace()
    path = ws.settings.deployment_file
    if path.exists() and not force:
        try:
            existing = ws.deployment
            registry = checksum_address(existing.certificate_registry)
            if ws.client.guard(lambda: ws.client.w3.eth.get_code(registry)):
                console.print(
                    f"already deployed: {existing.certificate_registry} (use --force to deploy again)"
                )
                return
        except EcertError:
            pass
    if not ws.keystore.has(ROOT_KEY):
        ws.keystore.create(ROOT_KEY)
    ws.fund_if_dev(ws.keystore.address(ROOT_KEY), 100)
    with ws.keystore.unlocked(ROOT_KEY) as root:
        deployment = deploy(ws.client, root)
    deployment.save(path)
    console.print(
        f"deployed CertificateRegistry at {deployment.certificate_registry} on chain {deployment.chain_id}"
    )
    console.print(f"deployment written to {path}")


# ─── authorities ─────────────────────────────────────────────────────────────────────────


@authority_app.command("add")
def authority_add(
    region: Annotated[str, typer.Option(help="GB/T 2260 region code, e.g. 330000 for 浙江.")],
    name: Annotated[str, typer.Option(help="The authority's name, e.g. 浙江省数据局.")],
) -> None:
    """Appoint the authority of a region (signed by the root key)."""
    from registry.certificate.identifiers import parse_region

    code = parse_region(region).code
    ws = Workspace()
    key_name = authority_key_name(code)
    if not ws.keystore.has(key_name):
        ws.keystore.create(key_name)
    address = ws.keystore.address(key_name)
    ws.fund_if_dev(address)
    with ws.keystore.unlocked(ROOT_KEY) as root:
        ws.registry.add_authority(root, address, int(code), name)
    console.print(f"authority of {code} ({name}): {address}")


def _authority_for(ws: Workspace, region: str) -> str:
    """The keystore name of the authority governing `region` (closest first)."""
    for candidate in (region, region[:4] + "00", region[:2] + "0000"):
        if ws.keystore.has(authority_key_name(candidate)):
            return authority_key_name(candidate)
    raise KeystoreError(
        f"No authority key for region {region} in this keystore: run `ecert authority add --region {region[:2]}0000`",
        code=ErrorCode.KEY_NOT_FOUND,
    )


# ─── agencies ────────────────────────────────────────────────────────────────────────────


@agency_app.command("add")
def agency_add(
    region: Annotated[str, typer.Option(help="The agency's GB/T 2260 region, e.g. 330100.")],
    code: Annotated[str, typer.Option(help="The agency's 统一社会信用代码.")],
    name: Annotated[str, typer.Option(help="The agency's name.")],
    types: Annotated[str, typer.Option(help="Comma-separated certificate type codes it may issue.")],
) -> None:
    """Register an agency: its secp256k1 and SM2 keys are created in the encrypted keystore and
    registered on chain (the SM2 key for the national co-seal)."""
    from registry.certificate.identifiers import parse_region, parse_uscc
    from registry.national import key_id

    region_code = parse_region(region).code
    code = parse_uscc(code).code
    type_codes = [_type_code(t) for t in types.split(",") if t.strip()]
    ws = Workspace()
    key_name = agency_key_name(code)
    if not ws.keystore.has(key_name):
        ws.keystore.create(key_name)
    if not ws.keystore.has_national(key_name):
        ws.keystore.create_national(key_name)
    address = ws.keystore.address(key_name)
    sm2 = ws.keystore.national_public_key(key_name)
    ws.fund_if_dev(address)
    with ws.keystore.unlocked(_authority_for(ws, region_code)) as authority:
        ws.registry.register_agency(authority, code, int(region_code), name, address, type_codes)
        ws.registry.add_national_key(authority, code, sm2)
    console.print(f"agency {code} ({name}, {region_code}) key {address}, types {', '.join(type_codes)}")
    console.print(f"agency {code} SM2 key id 0x{key_id(sm2).hex()} (`ecert agency show` prints the key)")


@agency_app.command("add-national-key")
def agency_add_national_key(
    code: Annotated[str, typer.Option(help="The agency's 统一社会信用代码.")],
) -> None:
    """Give an agency registered before the national co-seal its SM2 key (created in the keystore,
    registered on chain by the agency's key). Does nothing if that key is registered already."""
    from registry.national import key_id

    ws = Workspace()
    key_name = agency_key_name(code)
    if not ws.keystore.has_national(key_name):
        ws.keystore.create_national(key_name)
    sm2 = ws.keystore.national_public_key(key_name)
    if key_id(sm2) in ws.registry.agency_national_keys(code):
        console.print(f"agency {code}: SM2 key 0x{key_id(sm2).hex()} is registered already")
        return
    with ws.keystore.unlocked(key_name) as agency:
        ws.registry.add_national_key(agency, code, sm2)
    console.print(f"agency {code}: SM2 key id 0x{key_id(sm2).hex()}")


def _type_code(text: str) -> str:
    from registry.certificate.identifiers import parse_uscc

    text = text.strip().upper()
    if len(text) != 21 or not text[18:].isdigit():
        raise IdentifierError(
            f"Type code {text!r} must be 21 characters: a USCC + 3 digits", code=ErrorCode.ID_FORMAT
        )
    parse_uscc(text[:18])
    return text


@agency_app.command("rotate-key")
def agency_rotate_key(code: Annotated[str, typer.Option(help="The agency's 统一社会信用代码.")]) -> None:
    """Give the agency new secp256k1 and SM2 keys and retire the old ones from the moment the new
    are valid (what they anchored and sealed stays valid). An agency without an SM2 key gets one."""
    from registry.national import key_id

    ws = Workspace()
    current = agency_key_name(code)
    old_address = ws.keystore.address(current)
    old_sm2 = ws.keystore.national_public_key(current) if ws.keystore.has_national(current) else None
    staging = f"{current}.next"
    if not ws.keystore.has(staging):
        ws.keystore.create(staging)
    if not ws.keystore.has_national(staging):
        ws.keystore.create_national(staging)
    new_address = ws.keystore.address(staging)
    new_sm2 = ws.keystore.national_public_key(staging)
    ws.fund_if_dev(new_address)
    registered = ws.registry.agency_national_keys(code)
    with ws.keystore.unlocked(current) as old:
        ws.registry.add_key(old, code, new_address)
        if key_id(new_sm2) not in registered:
            ws.registry.add_national_key(old, code, new_sm2)
        if old_sm2 is not None and key_id(old_sm2) in registered:
            ws.registry.retire_national_key(old, key_id(old_sm2))
        ws.registry.retire_key(old, old_address)  # last: a retired key manages nothing more
    ws.keystore.rename(current, f"{current}.retired-{old_address[2:10].lower()}")
    ws.keystore.rename(staging, current)
    if old_sm2 is not None:
        ws.keystore.rename_national(current, f"{current}.retired-{key_id(old_sm2)[:4].hex()}")
    ws.keystore.rename_national(staging, current)
    console.print(f"agency {code}: new key {new_address}, retired {old_address}")
    retired = f", retired 0x{key_id(old_sm2).hex()}" if old_sm2 is not None else ""
    console.print(f"agency {code}: new SM2 key 0x{key_id(new_sm2).hex()}{retired}")


@agency_app.command("show")
def agency_show(
    code: Annotated[str, typer.Option(help="The agency's 统一社会信用代码.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """The agency as the registry holds it: region, suspension, and both kinds of keys with their history."""
    ws = Workspace()
    agency = ws.registry.agency(code)
    keys = [ws.registry.key_info(address) for address in ws.registry.agency_keys(code)]
    national = ws.registry.national_keys(code)
    if as_json:
        print_json({
            "code": agency.code, "name": agency.name, "region": agency.region, "suspended": agency.suspended,
            "keys": [
                {"address": k.address, "validFrom": k.valid_from, "retiredAt": k.retired_at,
                 "compromisedSince": k.compromised_since} for k in keys
            ],
            "nationalKeys": [
                {"keyId": "0x" + k.key_id.hex(), "publicKey": "0x" + k.public_key.hex(), "validFrom": k.valid_from,
                 "retiredAt": k.retired_at, "compromisedSince": k.compromised_since} for k in national
            ],
        })  # fmt: skip
        return
    state = "suspended" if agency.suspended else "active"
    console.print(f"agency {agency.code} ({agency.name}), region {agency.region}, {state}")
    console.print("secp256k1 keys (anchor, seal):")
    for k in keys:
        console.print(f"  {k.address}  {_history(k.valid_from, k.retired_at, k.compromised_since)}")
    console.print("SM2 keys (national co-seal):")
    if not national:
        console.print("  none: run `ecert agency add-national-key --code " + code + "`")
    for n in national:
        console.print(
            f"  key id 0x{n.key_id.hex()}  {_history(n.valid_from, n.retired_at, n.compromised_since)}"
        )
        console.print(f"    public key 0x{n.public_key.hex()}")


def _history(valid_from: int, retired_at: int, compromised_since: int) -> str:
    """`valid from …, retired …, compromised since …` in UTC."""

    def when(seconds: int) -> str:
        return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    parts = [f"valid from {when(valid_from)}"]
    if retired_at:
        parts.append(f"retired {when(retired_at)}")
    if compromised_since:
        parts.append(f"compromised since {when(compromised_since)}")
    if not retired_at and not compromised_since:
        parts.append("current")
    return ", ".join(parts)


@agency_app.command("compromise-key")
def agency_compromise_key(
    code: Annotated[str, typer.Option(help="The agency's 统一社会信用代码.")],
    key: Annotated[str, typer.Option(help="Address of the compromised key, or the 0x key id of an SM2 key.")],
    since: Annotated[
        str, typer.Option(help="When it was compromised: ISO time (UTC if no zone) or unix seconds.")
    ],
) -> None:
    """Mark a key compromised since a time: batches it anchored (an SM2 key: sealed) from then on
    become invalid. Signed by the agency's authority."""
    ws = Workspace()
    when = int(since) if since.isdigit() else int(_utc(since).timestamp())
    agency = ws.registry.agency(code)
    with ws.keystore.unlocked(_authority_for(ws, str(agency.region))) as authority:
        if re.fullmatch(r"0x[0-9a-fA-F]{64}", key):  # a 32-byte key id: an SM2 key
            ws.registry.compromise_national_key(authority, bytes.fromhex(key[2:]), when)
        else:
            ws.registry.compromise_key(authority, key, when)
    console.print(
        f"key {key} of {code} compromised since {dt.datetime.fromtimestamp(when, dt.UTC).isoformat()}"
    )


def _utc(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise EcertError(
            f"--since {text!r} is not a time: give ISO 8601 (2026-12-01T08:00) or unix seconds",
            code=ErrorCode.TIME_INVALID,
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


# ─── identifiers ─────────────────────────────────────────────────────────────────────────


@id_app.command("check")
def id_check(
    identifier: Annotated[
        str, typer.Argument(help="An e-licence identifier, 统一社会信用代码, 公民身份号码 or region code.")
    ],
    strict: Annotated[
        bool, typer.Option("--strict", help="Reject anything an issuer could not issue as is.")
    ] = False,
) -> None:
    """Exit 0 if the identifier is valid, 1 with the reason if not."""
    from registry.certificate.identifiers import check_identifier

    try:
        checked = check_identifier(identifier, strict=strict)
    except IdentifierError as exc:
        err.print(f"invalid [{exc.code}]: {exc.message}")
        raise typer.Exit(1) from None
    console.print(f"valid {checked.kind}: {checked.value}")
    for warning in checked.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")


def _load_plugins() -> None:
    for entry in entry_points(group="ecert.commands"):
        entry.load()(app)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: EcertErrors become one line with their code and exit status 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _load_plugins()
    try:
        app(args=argv)
    except EcertError as exc:
        err.print(f"error [{exc.code}]: {exc.message}")
        sys.exit(2)


def print_json(data: object) -> None:
    console.print_json(json.dumps(data, ensure_ascii=False))
