"""`ecert demo`: a local chain with a registry, three regional authorities, four agencies and
sample certificates, so a new user can issue, verify and change status within a minute.

It drives the same commands a user would (through `ecert`'s own functions), nothing special.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from rich.console import Console

from registry.chain.runner import AnvilNode
from registry.workspace import Workspace

console = Console()

BUSINESS_LICENCE = "11100000000013338W001"  # 营业执照 (type code: defining authority + 001)
DRIVING_LICENCE = "11100000000013338W002"  # 机动车驾驶证
AUTHORITIES = [("330000", "浙江省数据局"), ("440000", "广东省政务服务和数据管理局"), ("310000", "上海市大数据中心")]
AGENCIES = [
    ("330100", "11330100002493028E", "杭州市市场监督管理局", BUSINESS_LICENCE),
    ("440100", "114401000075021133", "广州市市场监督管理局", BUSINESS_LICENCE),
    ("310000", "113100000024185133", "上海市市场监督管理局", BUSINESS_LICENCE),
    ("330000", "113300000024821106", "浙江省公安厅交通警察总队", DRIVING_LICENCE),
]
SAMPLE_RECORDS = Path(__file__).with_name("demo_records.jsonl")


def ensure_password(ws: Workspace) -> None:
    """Give a demo home its own random keystore password (in a 0600 file) unless one is set."""
    try:
        ws.settings.require_keystore_password()
    except Exception:  # noqa: BLE001 - only the missing password is expected here
        path = ws.settings.default_password_file
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24))
        console.print(f"keystore password generated in {path}")


def run_demo(ws: Workspace) -> Path:
    """Set everything up (idempotent) and return the folder of sample holder packages."""
    from registry import cli as registry_cli
    from issuer.cli import issue

    ensure_password(ws)
    node = AnvilNode(ws.settings.chain_dir, ws.settings.chain_port)
    node.start()
    registry_cli.deploy_command(force=False)
    for region, name in AUTHORITIES:
        if ws.registry.authority_region(ws.keystore.address(f"authority-{region}")) if ws.keystore.has(f"authority-{region}") else False:
            continue
        registry_cli.authority_add(region=region, name=name)
    for region, code, name, type_code in AGENCIES:
        if ws.keystore.has(f"agency-{code}"):
            continue
        registry_cli.agency_add(region=region, code=code, name=name, types=type_code)
    out = ws.settings.home / "demo" / "certificates"
    if not any(out.glob("*.json")):
        issue(agency=AGENCIES[0][1], type_code=BUSINESS_LICENCE, input_file=SAMPLE_RECORDS, out=out, type_name="营业执照", qr=True)
    return out
