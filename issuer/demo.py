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

from issuer.settings import DemoSettings
from registry.chain.runner import AnvilNode
from registry.progress import StepClock
from registry.secrets_files import private_folder, write_private
from registry.settings import get_settings
from registry.workspace import Workspace

# soft_wrap: keys, codes, URLs and commands are printed whole on one line, whatever the width
# (a pipe or a file is 80 columns to rich); highlight off: no colour codes inside a copied key.
console = Console(soft_wrap=True, highlight=False)

BUSINESS_LICENCE = "11100000000013338W001"  # 营业执照 (type code: defining authority + 001)
DRIVING_LICENCE = "11100000000013338W002"  # 机动车驾驶证
AUTHORITIES = [
    ("330000", "浙江省数据局"),
    ("440000", "广东省政务服务和数据管理局"),
    ("310000", "上海市大数据中心"),
]
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


@dataclass
class Demo:
    home: Path
    ports: DemoSettings
    services: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    bank_key: str = ""
    issuer_key: str = ""
    clerk: tuple[str, str, str] | None = (
        None  # the bank's front-desk clerk: (username, password, TOTP secret)
    )
    claim: tuple[str, str, str] | None = None  # (holder name, ID number, claim code)
    # the demo agency's console staff: (role, name, username, password, TOTP secret)
    agency_staff: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    holders: list[str] = field(default_factory=list)
    password_rule: str = ""  # the wallet's own words for its password rule
    failed: bool = False  # a service stopped on its own

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{getattr(self.ports, service + '_port')}"


DEMO_FOLDERS = (
    "demo",
    "demo/certificates",
    "demo/claimable",
    "demo/logs",
)  # under the home: holder packages, logs


def make_demo_folders(home: Path) -> None:
    """The home and the demo's folders in it, 0700 whatever the umask (packages in them are 0600)."""
    private_folder(home)
    for name in DEMO_FOLDERS:
        private_folder(home / name)


def ensure_password(ws: Workspace) -> None:
    """Give a demo home its own random keystore password (in a 0600 file) unless one is set."""
    try:
        ws.settings.require_keystore_password()
    except Exception:
        path = ws.settings.default_password_file
        private_folder(path.parent)
        write_private(path, secrets.token_urlsafe(24))
        console.print(f"keystore password generated in {path}")


def set_up_chain(ws: Workspace, clock: StepClock) -> None:
    """Chain, registry, authorities and agencies (what `ecert chain up`, `deploy`, `authority add`
    and `agency add` do)."""
    from registry import cli as registry_cli

    ensure_password(ws)
    with clock.step(f"chain: anvil on 127.0.0.1:{ws.settings.chain_port}, state in {ws.settings.chain_dir}"):
        AnvilNode(ws.settings.chain_dir, ws.settings.chain_port).start()
    with clock.step("registry contracts"):
        registry_cli.deploy_command(force=False)
    with clock.step(f"{len(AUTHORITIES)} regional authorities and {len(AGENCIES)} agencies"):
        for region, name in AUTHORITIES:
            key_name = f"authority-{region}"
            if not (
                ws.keystore.has(key_name) and ws.registry.authority_region(ws.keystore.address(key_name))
            ):
                registry_cli.authority_add(region=region, name=name)
        for region, code, name, type_code in AGENCIES:
            if not ws.keystore.has(f"agency-{code}"):
                registry_cli.agency_add(region=region, code=code, name=name, types=type_code)


def issue_samples(ws: Workspace, clock: StepClock) -> tuple[Path, Path]:
    """Sample certificates for the demo holders (seeded into the wallet) and one to claim."""
    from issuer.cli import issue

    seeded, claimable = ws.settings.home / "demo" / "certificates", ws.settings.home / "demo" / "claimable"
    if not any(seeded.glob("*.json")):
        for records, agency, type_code, name in SAMPLES:
            with clock.step(f"issuing sample {name} certificates ({records.name})"):
                issue(
                    agency=agency,
                    type_code=type_code,
                    input_file=records,
                    out=seeded,
                    type_name=name,
                    qr=True,
                )
    if not any(claimable.glob("*.json")):
        with clock.step("issuing a certificate for a new holder to claim"):
            issue(
                agency=AGENCIES[0][1],
                type_code=BUSINESS_LICENCE,
                input_file=CLAIMABLE,
                out=claimable,
                type_name="营业执照",
            )
    return seeded, claimable


def _ecert(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    """Run `ecert …` as a user would (the issuer imports neither the verifier nor the wallet);
    its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", "registry", *args], capture_output=True, text=True, check=False, env=env,
        input=stdin,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"ecert {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def _spawn(demo: Demo, name: str, args: list[str], env: dict[str, str]) -> None:
    logs = private_folder(demo.home / "demo" / "logs")
    fd = os.open(logs / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "ab") as log:
        demo.services[name] = subprocess.Popen(
            [sys.executable, "-m", "registry", "serve", *args], env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip


def _wait_listening(demo: Demo, name: str, timeout_s: float = 60) -> None:
    log = demo.home / "demo" / "logs" / f"{name}.log"
    url = demo.url(name) + "/"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if demo.services[name].poll() is not None:
            raise RuntimeError(f"{name} did not start: see {log}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:  # any answer: it is listening
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{name} did not answer on {url} within {timeout_s:.0f} s: see {log}")


def start_services(demo: Demo, clock: StepClock) -> None:
    """Keys first (each is one `ecert` command), then the three services started together."""
    # share links (the verifier's) and the issuer's QR codes point at this demo's verifier node
    env = {**os.environ, "ECERT_HOME": str(demo.home), "ECERT_VERIFIER_PUBLIC_URL": demo.url("verifier"),
           "ECERT_ISSUER_VERIFIER_URL": demo.url("verifier")}  # fmt: skip
    with clock.step("API keys: the wallet's and a bank's at the verifier node, an agency's at the issuer"):
        # each command prints the key alone on its last line
        wallet_key = _ecert(
            "verifier",
            "org",
            "add",
            "--name",
            "浙里办钱包",
            "--region",
            "330000",
            "--kind",
            "wallet",
            env=env,
        ).splitlines()[-1]
        bank = _ecert(
            "verifier",
            "org",
            "add",
            "--name",
            "示例银行杭州分行",
            "--region",
            "330000",
            "--kind",
            "bank",
            env=env,
        ).splitlines()
        demo.bank_key = bank[-1]
        demo.clerk = _add_clerk(bank, env)
        demo.issuer_key = _ecert(
            "issuer",
            "api-key",
            "create",
            "--agency",
            AGENCIES[0][1],
            "--scopes",
            "issue,status",
            "--label",
            "demo",
            env=env,
        ).splitlines()[-1]
        # the console's dashboard reads the agency's verification counts from the verifier node
        dashboard_key = _ecert(
            "verifier", "org", "add", "--name", AGENCIES[0][2], "--region", AGENCIES[0][0], "--kind", "agency",
            env=env,
        ).splitlines()[-1]  # fmt: skip
    issuer_env = {**env, "ECERT_ISSUER_DASHBOARD_VERIFIER_URL": demo.url("verifier"),
                  "ECERT_ISSUER_DASHBOARD_VERIFIER_KEY": dashboard_key}  # fmt: skip
    wallet_env = {**env, "ECERT_WALLET_VERIFIER_KEY": wallet_key, "ECERT_WALLET_ISSUER_URL": demo.url("issuer"),
                  "ECERT_WALLET_VERIFIER_URL": demo.url("verifier")}  # fmt: skip
    with clock.step(
        f"services: issuer API {demo.url('issuer')}, verifier node {demo.url('verifier')}, wallet {demo.url('wallet')}"
    ):
        _spawn(demo, "issuer", ["issuer", "--port", str(demo.ports.issuer_port)], issuer_env)
        _spawn(
            demo, "verifier", ["verifier", "--region", "330000", "--port", str(demo.ports.verifier_port)], env
        )
        _spawn(demo, "wallet", ["wallet", "--port", str(demo.ports.wallet_port)], wallet_env)
        for name in ("issuer", "verifier", "wallet"):
            _wait_listening(demo, name)


ORG_LINE = re.compile(r"^organisation (?P<id>\d+) ")


def _add_clerk(org_add_output: list[str], env: dict[str, str]) -> tuple[str, str, str]:
    """A front-desk clerk of the bank (a fresh name each run, as each run makes fresh keys)."""
    found = next(m for line in org_add_output if (m := ORG_LINE.match(line)))
    username, password = f"clerk-{secrets.token_hex(2)}", "demo-" + secrets.token_urlsafe(9)
    out = _ecert(
        "verifier", "staff", "add", "--org", found["id"], "--username", username, "--name", "王柜员",
        "--password-stdin", env=env, stdin=password + "\n",
    ).splitlines()  # fmt: skip
    return username, password, out[-2]  # the secret, then its provisioning URI


AGENCY_STAFF = (("clerk", "经办人", "李娜"), ("approver", "审批人", "张伟"), ("auditor", "审计员", "刘洋"))


def add_agency_staff(ws: Workspace, demo: Demo, clock: StepClock) -> None:
    """A clerk, an approver and an auditor of the demo agency, who sign in to the issuer's console
    (`/console`); fresh usernames each run, as `ecert issuer staff add` would make them."""
    from issuer.runtime import IssuerRuntime
    from issuer.staff import staff_accounts

    with clock.step(f"agency staff: a clerk, an approver and an auditor of {AGENCIES[0][2]}"):
        runtime = IssuerRuntime.open(ws)
        try:
            staff = staff_accounts(runtime)
            suffix = secrets.token_hex(2)
            for role, word, name in AGENCY_STAFF:
                username, password = f"{role}-{suffix}", "demo-" + secrets.token_urlsafe(9)
                made = staff.add(AGENCIES[0][1], role, username, name, password)
                demo.agency_staff.append((role, word, made.username, password, made.secret))
        finally:
            runtime.close()


HOLDER_LINE = re.compile(r"holder (?P<name>\S+): ID number (?P<id>\w+), password (?P<password>\S+)")
RULE_LINE = re.compile(r"^password rule: (?P<rule>.+)$", re.MULTILINE)


def seed_holders(demo: Demo, seeded: Path, claimable: Path, clock: StepClock) -> None:
    """Demo holders through the wallet's own command (the issuer does not import the wallet)."""
    with clock.step("demo holders: wallet accounts with their certificates"):
        out = _ecert(
            "wallet",
            "demo-holders",
            "--packages",
            str(seeded),
            env={**os.environ, "ECERT_HOME": str(demo.home)},
        )
    demo.holders = [
        f"{m['name']}  身份证号 {m['id']}  密码 {m['password']}" for m in HOLDER_LINE.finditer(out)
    ]
    if rule := RULE_LINE.search(out):
        demo.password_rule = rule["rule"]
    with clock.step("a claim code for a new holder"):
        package = sorted(claimable.glob("*.json"))[0]
        answer = httpx.post(
            f"{demo.url('issuer')}/v1/certificates/{package.stem}/claim-code",
            headers={"Authorization": f"Bearer {demo.issuer_key}"}, timeout=10,
        )  # fmt: skip
        answer.raise_for_status()
    demo.claim = ("赵敏", "330102197801010046", answer.json()["code"])


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, an init system, a closed terminal


def _ignore_stop_signals() -> None:
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)


def stop(demo: Demo) -> None:
    """Stop the services; a second Ctrl-C or SIGTERM meanwhile must not leave them running."""
    _ignore_stop_signals()
    for process in demo.services.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in demo.services.values():
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _interrupt(_signum: int, _frame: object) -> None:
    """Any stop signal stops the demo as Ctrl-C does; the ones that follow are ignored, so a
    second signal cannot cut `stop` short and leave the services running."""
    _ignore_stop_signals()
    raise KeyboardInterrupt


def run_demo(ws: Workspace, *, wait: bool = True) -> Demo:
    demo = Demo(ws.settings.home.resolve(), DemoSettings())
    clock = StepClock(console)
    clock.say(f"ecert demo in {demo.home}")
    make_demo_folders(demo.home)
    set_up_chain(ws, clock)
    seeded, claimable = issue_samples(ws, clock)
    add_agency_staff(ws, demo, clock)
    if wait:
        for number in STOP_SIGNALS:  # from here a stop must also stop the services
            signal.signal(number, _interrupt)
    try:
        start_services(demo, clock)
        seed_holders(demo, seeded, claimable, clock)
        print_summary(demo, seeded)
        if wait:
            while all(p.poll() is None for p in demo.services.values()):
                time.sleep(0.5)
            console.print(f"a service stopped: see {demo.home / 'demo' / 'logs'}", style="red")
            demo.failed = True
    except KeyboardInterrupt:
        pass
    finally:
        if wait:
            stop(demo)
            console.print(f"demo stopped (the chain keeps running: `{_here(demo)}ecert chain down` stops it)")
    return demo


def _here(demo: Demo) -> str:
    """The environment a copied command needs to reach this demo's home and chain (none for the defaults)."""
    core = get_settings()
    moved = demo.home != Path(".ecert").resolve() or core.rpc_url != "http://127.0.0.1:8545"
    return f"ECERT_HOME='{demo.home}' ECERT_RPC_URL={core.rpc_url} " if moved else ""


def print_summary(demo: Demo, seeded: Path) -> None:
    """Everything a user copies (keys, codes, URLs, commands) is printed whole on its own line."""
    say = console.print
    say("\necert demo is up — 电子证照演示已启动\n", style="bold green")
    say(f"  holder wallet 持证人钱包   {demo.url('wallet')}/")
    say(f"  verifier node 核验节点     {demo.url('verifier')}/docs   (region 330000)")
    say(f"  issuer API   发证接口     {demo.url('issuer')}/docs")
    say(f"  front desk   核验前台     {demo.url('verifier')}/desk")
    say(f"  agency console 机构控制台 {demo.url('issuer')}/console")
    say("\n  demo holders 演示持证人 (sign in to the wallet with ID number + password):")
    for line in demo.holders:
        say(f"    {line}")
    if demo.claim:
        name, id_number, code = demo.claim
        say(
            f"\n  register as {name} (ID number {id_number}) with a password of your own, then claim with code:"
        )
        say(f"    {code}")
        if demo.password_rule:
            say(f"  password rule 密码规则: {demo.password_rule}")
    if demo.clerk:
        username, password, secret = demo.clerk
        say("\n  front-desk clerk 前台柜员 (sign in at /desk; the code is what an authenticator app shows):")
        say(f"    username 用户名 {username}  password 密码 {password}")
        say(f"    TOTP secret 动态口令密钥 {secret}")
        say("  the current code 当前动态口令:")
        say(f"    {sys.executable} -c \"import pyotp; print(pyotp.TOTP('{secret}').now())\"")
    if demo.agency_staff:
        say(
            f"\n  agency console 机构控制台 {demo.url('issuer')}/console — staff of {AGENCIES[0][2]} (password + the current code):"
        )
        for role, word, username, password, secret in demo.agency_staff:
            say(f"    {role} {word}  username 用户名 {username}  password 密码 {password}")
            say(
                f"      current code 动态口令: {sys.executable} -c \"import pyotp; print(pyotp.TOTP('{secret}').now())\""
            )
    say("\n  bank API key 银行密钥:")
    say(f"    {demo.bank_key}")
    say(f"  agency API key 发证机关密钥 ({AGENCIES[0][1]}):")
    say(f"    {demo.issuer_key}")
    first = sorted(seeded.glob("*.json"))[0]
    say("  verify a package 核验证照:")
    say(f"    {_here(demo)}ecert verify '{first}'")
    say("\n  Ctrl-C stops the services.\n")
