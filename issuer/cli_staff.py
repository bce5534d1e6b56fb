"""`ecert issuer staff add|list|disable`: the agency staff who sign in to the console (/console)
with a password and a TOTP code (`issuer.staff`). Systems keep using API keys.

Only typer and rich are imported here; the runtime is imported inside the commands."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from registry.cli import command_group
from registry.error_codes import ErrorCode
from registry.errors import EcertError

if TYPE_CHECKING:
    from issuer.runtime import IssuerRuntime
    from issuer.staff import IssuerStaff

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
ROLES = "clerk, approver, auditor, admin"
staff_app = command_group(
    "Agency staff of the console (/console): each signs in with a password and a TOTP code and has one "
    "role — clerk (issues, drafts status changes), approver (approves or rejects a clerk's proposals), "
    "auditor (reads the audit trail and dashboard), admin (staff and API keys). Systems keep using API keys."
)


@staff_app.command("add")
def staff_add(
    agency: Annotated[
        str, typer.Option(help="The agency's 统一社会信用代码 (its key must be in the keystore).")
    ],
    role: Annotated[str, typer.Option(help=f"One of {ROLES}.")],
    username: Annotated[str, typer.Option(help="The sign-in name: 2–64 of a-z 0-9 . _ -.")],
    name: Annotated[str, typer.Option(help="The person's name as the console shows it, e.g. 王芳.")] = "",
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from the first line of standard input."),
    ] = False,
) -> None:
    """Add a staff member and print the TOTP secret and provisioning URI, shown once: add it to an
    authenticator app now. The password (10–128 characters, not a common one) is asked for twice,
    or read from standard input with --password-stdin.

    Example: ecert issuer staff add --agency 11330100002493028E --role clerk --username wangfang --name 王芳
    """
    from issuer.staff import parse_role

    chosen = parse_role(role)  # before the password is asked for
    password = (
        sys.stdin.readline().rstrip("\n")
        if password_stdin
        else typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    )
    runtime, staff = _open()
    try:
        code = _served_agency(runtime, agency)
        made = staff.add(code, chosen, username, name or username, password)
    finally:
        runtime.close()
    err.print(f"staff member {made.id} ({made.username}), {made.role.value} of agency {code}")
    err.print("TOTP secret and provisioning URI, shown once:")
    print(made.secret)
    print(made.uri)


@staff_app.command("list")
def staff_list(
    agency: Annotated[str | None, typer.Option(help="Only this agency's staff.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Staff members with their agency, role and whether they are disabled (never a secret)."""
    runtime, staff = _open()
    try:
        members = staff.members(agency.strip().upper() if agency else None)
    finally:
        runtime.close()
    if as_json:
        rows = [{"id": m.id, "username": m.username, "name": m.display_name, "role": m.role.value,
                 "agency": m.agency_code, "disabled": m.disabled} for m in members]  # fmt: skip
        print(json.dumps(rows, ensure_ascii=False))
        return
    for m in members:
        state = "disabled" if m.disabled else "active"
        console.print(
            f"{m.id:>5}  {m.username:<20} {m.role.value:<9} {state:<8} {m.display_name}  ({m.agency_code})"
        )


@staff_app.command("disable")
def staff_disable(
    staff_id: Annotated[int, typer.Option("--id", help="The staff member (`ecert issuer staff list`).")],
) -> None:
    """Refuse a staff member's sign-ins from now on and end their sessions at once."""
    runtime, staff = _open()
    try:
        member = staff.disable(staff_id)
    finally:
        runtime.close()
    console.print(f"disabled staff member {member.id} ({member.username}) and ended their sessions")


def _open() -> tuple[IssuerRuntime, IssuerStaff]:
    from issuer.runtime import IssuerRuntime
    from issuer.staff import staff_accounts

    runtime = IssuerRuntime.open()
    try:
        return runtime, staff_accounts(runtime)
    except BaseException:
        runtime.close()
        raise


def _served_agency(runtime: IssuerRuntime, agency: str) -> str:
    """The agency's code, registered in the issuer's database if this is its first use here."""
    from issuer.models import Agency
    from issuer.serve import served_agencies
    from registry.certificate.identifiers import parse_uscc

    code = parse_uscc(agency).code
    with runtime.sessions() as session:
        if session.get(Agency, code) is not None:
            return code
    if code not in served_agencies(runtime):
        raise EcertError(
            f"Agency {code} has no key in this keystore: run `ecert agency add` first",
            code=ErrorCode.AGENCY_UNKNOWN,
        )
    runtime.register_agency(code)
    return code
