"""`ecert demo`: the whole system on one machine with demo data, so a new user can click through
the story in a minute: a local chain with the registry, three regional authorities and four
agencies; sample certificates; the issuer API, a verifier node and the holder wallet running;
demo holders whose sign-ins it prints, and a fresh claim code for a holder to claim.

Every step is what a user would do with `ecert` itself (the services run as `ecert serve …`
processes), and every step is idempotent: run it again on the same home and it carries on.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
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
HERE = Path(__file__).parent
SAMPLES = [  # (records, agency, type, name)
    (HERE / "demo_records.jsonl", AGENCIES[0][1], BUSINESS_LICENCE, "营业执照"),
    (HERE / "demo_driving.jsonl", AGENCIES[3][1], DRIVING_LICENCE, "机动车驾驶证"),
]
CLAIMABLE = HERE / "demo_claimable.jsonl"  # a holder who registers and claims during the demo
PORTS = {  # ECERT_DEMO_<NAME>_PORT moves one
    name: int(os.environ.get(f"ECERT_DEMO_{name.upper()}_PORT", default))
    for name, default in (("issuer", 8001), ("verifier", 8002), ("wallet", 8003))
}


@dataclass
class Demo:
    home: Path
    services: dict[str, subprocess.Popen] = field(default_factory=dict)
    bank_key: str = ""
    issuer_key: str = ""
    claim: tuple[str, str, str] | None = None  # (holder name, ID number, claim code)
    holders: list[str] = field(default_factory=list)


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


def set_up_chain(ws: Workspace) -> None:
    """Chain, registry, authorities and agencies (what `ecert chain up`, `deploy`, `authority add`
    and `agency add` do)."""
    from registry import cli as registry_cli

    ensure_password(ws)
    AnvilNode(ws.settings.chain_dir, ws.settings.chain_port).start()
    registry_cli.deploy_command(force=False)
    for region, name in AUTHORITIES:
        key_name = f"authority-{region}"
        if not (ws.keystore.has(key_name) and ws.registry.authority_region(ws.keystore.address(key_name))):
            registry_cli.authority_add(region=region, name=name)
    for region, code, name, type_code in AGENCIES:
        if not ws.keystore.has(f"agency-{code}"):
            registry_cli.agency_add(region=region, code=code, name=name, types=type_code)


def issue_samples(ws: Workspace) -> tuple[Path, Path]:
    """Sample certificates for the demo holders (seeded into the wallet) and one to claim."""
    from issuer.cli import issue

    seeded, claimable = ws.settings.home / "demo" / "certificates", ws.settings.home / "demo" / "claimable"
    if not any(seeded.glob("*.json")):
        for records, agency, type_code, name in SAMPLES:
            issue(agency=agency, type_code=type_code, input_file=records, out=seeded, type_name=name, qr=True)
    if not any(claimable.glob("*.json")):
        issue(agency=AGENCIES[0][1], type_code=BUSINESS_LICENCE, input_file=CLAIMABLE, out=claimable, type_name="营业执照")
    return seeded, claimable


def _ecert(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "registry", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ecert {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip().splitlines()[-1]


def _start(demo: Demo, name: str, args: list[str], env: dict[str, str]) -> None:
    logs = demo.home / "demo" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "ab") as log:
        demo.services[name] = subprocess.Popen(
            [sys.executable, "-m", "registry", "serve", *args], env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{PORTS[name]}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if demo.services[name].poll() is not None:
            raise RuntimeError(f"{name} did not start: see {logs / (name + '.log')}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:  # any answer: it is listening
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{name} did not answer on {url} within 60 s: see {logs / (name + '.log')}")


def start_services(demo: Demo) -> None:
    env = {**os.environ, "ECERT_HOME": str(demo.home), "ECERT_VERIFIER_PUBLIC_URL": f"http://127.0.0.1:{PORTS['verifier']}"}
    wallet_key = _ecert("verifier", "org", "add", "--name", "浙里办钱包", "--region", "330000", "--kind", "wallet")
    demo.bank_key = _ecert("verifier", "org", "add", "--name", "示例银行杭州分行", "--region", "330000", "--kind", "bank")
    demo.issuer_key = _ecert("issuer", "api-key", "create", "--agency", AGENCIES[0][1], "--scopes", "issue,status", "--label", "demo")
    _start(demo, "issuer", ["issuer", "--port", str(PORTS["issuer"])], env)
    _start(demo, "verifier", ["verifier", "--region", "330000", "--port", str(PORTS["verifier"])], env)
    wallet_env = {**env, "ECERT_WALLET_VERIFIER_KEY": wallet_key, "ECERT_WALLET_ISSUER_URL": f"http://127.0.0.1:{PORTS['issuer']}",
                  "ECERT_WALLET_VERIFIER_URL": f"http://127.0.0.1:{PORTS['verifier']}"}  # fmt: skip
    _start(demo, "wallet", ["wallet", "--port", str(PORTS["wallet"])], wallet_env)


def seed_holders(demo: Demo, seeded: Path, claimable: Path) -> None:
    """Demo holders through the wallet's own command (the issuer does not import the wallet)."""
    done = subprocess.run(
        [sys.executable, "-m", "registry", "wallet", "demo-holders", "--packages", str(seeded)],
        env={**os.environ, "ECERT_HOME": str(demo.home), "COLUMNS": "250"}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    demo.holders = [
        f"{m['name']}  身份证号 {m['id']}  密码 {m['password']}"
        for m in re.finditer(r"holder (?P<name>\S+): ID number (?P<id>\w+), password (?P<password>\S+)", done.stdout)
    ]
    package = sorted(claimable.glob("*.json"))[0]
    answer = httpx.post(
        f"http://127.0.0.1:{PORTS['issuer']}/v1/certificates/{package.stem}/claim-code",
        headers={"Authorization": f"Bearer {demo.issuer_key}"}, timeout=10,
    )  # fmt: skip
    answer.raise_for_status()
    demo.claim = ("赵敏", "330102197801010046", answer.json()["code"])


def stop(demo: Demo) -> None:
    for process in demo.services.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in demo.services.values():
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the demo as Ctrl-C does


def run_demo(ws: Workspace, *, wait: bool = True) -> Demo:
    demo = Demo(ws.settings.home.resolve())
    set_up_chain(ws)
    seeded, claimable = issue_samples(ws)
    try:
        start_services(demo)
        seed_holders(demo, seeded, claimable)
        print_summary(demo, seeded)
        if wait:
            signal.signal(signal.SIGTERM, _interrupt)
            while all(p.poll() is None for p in demo.services.values()):
                time.sleep(0.5)
            console.print("[red]a service stopped: see .ecert/demo/logs[/red]")
    except KeyboardInterrupt:
        pass
    finally:
        if wait:
            stop(demo)
            console.print("demo stopped (the chain keeps running: `ecert chain down` stops it)")
    return demo


def print_summary(demo: Demo, seeded: Path) -> None:
    p = PORTS
    console.print("\n[bold green]ecert demo is up[/bold green] — 电子证照演示已启动\n")
    console.print(f"  holder wallet 持证人钱包   http://127.0.0.1:{p['wallet']}/")
    console.print(f"  verifier node 核验节点     http://127.0.0.1:{p['verifier']}/docs   (region 330000)")
    console.print(f"  issuer API   发证接口     http://127.0.0.1:{p['issuer']}/docs")
    console.print("\n  demo holders 演示持证人 (sign in to the wallet with ID number + password):")
    for line in demo.holders:
        console.print(f"    {line}")
    if demo.claim:
        name, id_number, code = demo.claim
        console.print(f"\n  register as {name} (ID number {id_number}, any password) and claim code [bold]{code}[/bold]")
    console.print(f"\n  bank API key 银行密钥: {demo.bank_key}")
    console.print(f"  agency API key 发证机关密钥 (11330100002493028E): {demo.issuer_key}")
    first = sorted(seeded.glob("*.json"))[0]
    console.print(f"  verify a package:  ecert verify '{first}'")
    console.print("\n  Ctrl-C stops the services.\n")
