"""The whole system as operators run it, for the wallet's browser tests: a temporary ECERT_HOME
with an anvil chain, the registry, the 浙江 authority and a 杭州 agency (made with `ecert`),
`ecert serve issuer`, `ecert serve verifier --region 330000`, organisation keys for the wallet
and a bank, certificates issued through the issuer API for holders with valid GB 11643 numbers,
and `ecert serve wallet`. One stack per test process (xdist worker), started on first use and
stopped when pytest ends. Not a conftest: that would shadow tests/conftest.py."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_process import ServiceProcess

from registry.certificate.identifiers import id_number_check_char
from registry.chain.runner import free_port

ECERT = [sys.executable, "-c", "from registry.cli import main; main()"]
# Until the `wallet` entry point is installed, register the wallet's commands by hand.
ECERT_WITH_WALLET = [
    sys.executable,
    "-c",
    "from registry.cli import app, main; from wallet.cli import register; register(app); main()",
]
AGENCY = "11330100002493028E"  # 杭州市市场监督管理局, region 330100
TYPE = "11100000000013338W001"  # 营业执照
WALLET_ORG = "浙里办钱包"
BANK_ORG = "某某银行杭州分行"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
HOLDER_NAMES = ["张三丰", "李大壮", "王秀英", "陈伟", "赵小红", "刘建国", "孙丽", "周杰", "吴敏", "郑强"]


def id_number(serial: int) -> str:
    """A valid 公民身份号码 of someone born in 杭州市西湖区 (330106) in 1960–1969."""
    body = f"330106196{serial % 10}0{1 + serial % 9}1{serial % 10}{100 + serial:03d}"
    return body + id_number_check_char(body)


def wallet_command() -> list[str]:
    installed = any(e.name == "wallet" for e in entry_points(group="ecert.commands"))
    return ECERT if installed else ECERT_WITH_WALLET


@dataclass(frozen=True)
class Person:
    name: str
    id_number: str
    identifier: str


class Service(ServiceProcess):
    """A long-running `ecert serve …` subprocess with its log, started at once."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        log_dir: Path,
        port: int,
        command: list[str] = ECERT,
    ) -> None:
        super().__init__(name, args, env, log_dir / f"{name}.log", port, command)
        self.launch()

    def log(self) -> str:
        return super().log()[-5000:]


class Stack:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / ".ecert"
        chain_port = free_port()
        self.env = {
            **os.environ,
            "ECERT_HOME": str(self.home),
            "ECERT_CHAIN_PORT": str(chain_port),
            "ECERT_RPC_URL": f"http://127.0.0.1:{chain_port}",
            "ECERT_KEYSTORE_PASSWORD": secrets.token_hex(12),
            "ECERT_KEYSTORE_SCRYPT_N": "1024",
            "ECERT_ISSUER_BATCH_WINDOW_S": "0.2",
            "ECERT_ISSUER_BATCH_MAX_WAIT_S": "0",
            "ECERT_ISSUER_CONFIRMATIONS": "0",
            "COLUMNS": "200",
        }
        self.services: list[Service] = []
        self.people: list[Person] = []
        self._next = 0
        self._lock = threading.Lock()
        self.timings: dict[str, float] = {}

    # ─── setting up ──────────────────────────────────────────────────────────────────────

    def ecert(self, *args: str, env: dict[str, str] | None = None, command: list[str] = ECERT) -> str:
        done = subprocess.run(
            [*command, *args], env=env or self.env, capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise AssertionError(
                f"ecert {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done.stdout

    def _timed(self, label: str, step: Callable[[], Any]) -> Any:
        started = time.monotonic()
        try:
            return step()
        finally:
            self.timings[label] = round(time.monotonic() - started, 2)

    def start(self, holders: int = 24) -> Stack:  # the e2e modules of one process take about 14
        """Independent steps run side by side: the verifier's organisations and the wallet do not
        wait for the chain; the verifier waits for the deployment; the issuer for its agency."""
        started = time.monotonic()
        verifier_port, issuer_port, wallet_port = free_port(), free_port(), free_port()
        failures: list[BaseException] = []

        def branch(label: str, step: Callable[[], Any]) -> threading.Thread:
            def run() -> None:
                try:
                    self._timed(label, step)
                except BaseException as exc:
                    failures.append(exc)

            thread = threading.Thread(target=run, name=label)
            thread.start()
            return thread

        def organisations_then_wallet() -> None:
            keys = []
            for name, region, kind in ((WALLET_ORG, "330000", "wallet"), (BANK_ORG, "330100", "bank")):
                out = self.ecert(
                    "verifier",
                    "org",
                    "add",
                    "--name",
                    name,
                    "--region",
                    region,
                    "--kind",
                    kind,
                    "--node",
                    "330000",
                )
                keys.append(out.strip().splitlines()[-1])
            self.wallet_key, self.bank_key = keys
            env = {**self.env, "ECERT_WALLET_ISSUER_URL": f"http://127.0.0.1:{issuer_port}",
                   "ECERT_WALLET_VERIFIER_URL": f"http://127.0.0.1:{verifier_port}", "ECERT_WALLET_VERIFIER_KEY": self.wallet_key,
                   "ECERT_WALLET_ORG_NAME": WALLET_ORG, "ECERT_WALLET_PASSWORD_SCRYPT_N": "4096", "ECERT_WALLET_STATUS_CACHE_S": "0"}  # fmt: skip
            self.wallet = self._serve(
                "wallet", ["serve", "wallet", "--port", str(wallet_port)], env, wallet_port, wallet_command()
            )
            self.wallet.wait_healthy()

        def chain_then_issuer() -> None:
            self.ecert("chain", "up")
            workspace = self._workspace()
            self._deploy(workspace)
            env = {**self.env, "ECERT_VERIFIER_PUBLIC_URL": f"http://127.0.0.1:{verifier_port}"}
            self.verifier = self._serve(
                "verifier",
                ["serve", "verifier", "--region", "330000", "--port", str(verifier_port)],
                env,
                verifier_port,
            )
            self._register_agency(workspace)
            # the issuer's QR codes link to this verifier node
            issuer_env = {**self.env, "ECERT_ISSUER_VERIFIER_URL": f"http://127.0.0.1:{verifier_port}"}
            self.issuer = self._serve(
                "issuer", ["serve", "issuer", "--port", str(issuer_port)], issuer_env, issuer_port
            )
            self.issuer_key = (
                self.ecert("issuer", "api-key", "create", "--agency", AGENCY, "--scopes", "issue,status")
                .strip()
                .splitlines()[-1]
            )
            self.issuer.wait_healthy()
            self._issue(holders)
            self.verifier.wait_healthy()

        for thread in (
            branch("organisations+wallet", organisations_then_wallet),
            branch("chain+issuer+verifier", chain_then_issuer),
        ):
            thread.join()
        self.timings["total"] = round(time.monotonic() - started, 2)
        if failures:
            raise failures[0]
        return self

    # The registry's part is done in process with the registry's own API (what `ecert deploy`,
    # `ecert authority add` and `ecert agency add` do), sparing three interpreter starts.
    def _workspace(self):
        from pydantic import SecretStr

        from registry.settings import Settings
        from registry.workspace import Workspace

        return Workspace(Settings(
            home=self.home, rpc_url=self.env["ECERT_RPC_URL"], chain_port=int(self.env["ECERT_CHAIN_PORT"]),
            keystore_password=SecretStr(self.env["ECERT_KEYSTORE_PASSWORD"]), keystore_scrypt_n=1024,
        ))  # fmt: skip

    def _deploy(self, ws) -> None:
        from registry.deploy import deploy
        from registry.workspace import ROOT_KEY

        ws.keystore.create(ROOT_KEY)
        ws.fund_if_dev(ws.keystore.address(ROOT_KEY), 100)
        with ws.keystore.unlocked(ROOT_KEY) as root:
            deploy(ws.client, root).save(ws.settings.deployment_file)

    def _register_agency(self, ws) -> None:
        from registry.workspace import ROOT_KEY, agency_key_name, authority_key_name

        authority, agency = authority_key_name("330000"), agency_key_name(AGENCY)
        for name in (authority, agency):
            ws.keystore.create(name)
            ws.fund_if_dev(ws.keystore.address(name))
        with ws.keystore.unlocked(ROOT_KEY) as root:
            ws.registry.add_authority(root, ws.keystore.address(authority), 330000, "浙江省数据局")
        with ws.keystore.unlocked(authority) as signer:
            ws.registry.register_agency(
                signer, AGENCY, 330100, "杭州市市场监督管理局", ws.keystore.address(agency), [TYPE]
            )

    def _serve(
        self, name: str, args: list[str], env: dict[str, str], port: int, command: list[str] = ECERT
    ) -> Service:
        service = Service(name, args, env, self.root, port, command)
        with self._lock:
            self.services.append(service)
        return service

    def issuer_client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.issuer.url, headers={"Authorization": f"Bearer {self.issuer_key}"}, timeout=30
        )

    def _issue(self, count: int) -> None:
        """One batch: a 个体工商户 business licence for each holder, held by the person (ID number)."""
        records = [
            {"holder": {"name": HOLDER_NAMES[i % len(HOLDER_NAMES)], "code": id_number(i)}, "validUntil": "2045-12-31",
             "number": f"3301066000{i:05d}",
             "ext": {"type": "个体工商户", "address": f"浙江省杭州市西湖区文三路{100 + i}号", "scope": ["餐饮服务", "食品销售"]}}
            for i in range(count)
        ]  # fmt: skip
        with self.issuer_client() as api:
            job = api.post("/v1/batches", json={"typeCode": TYPE, "typeName": "营业执照", "records": records})
            assert job.status_code == 202, job.text
            job_id = job.json()["id"]
            deadline = time.monotonic() + 90
            while True:
                state = api.get(f"/v1/jobs/{job_id}").json()
                if state["done"]:
                    break
                assert time.monotonic() < deadline, f"issuing did not finish: {state}\n{self.issuer.log()}"
                time.sleep(0.2)
        assert not state["errors"], state["errors"]
        self.people = [
            Person(r["holder"]["name"], r["holder"]["code"], ident)
            for r, ident in zip(records, state["identifiers"], strict=True)
        ]

    # ─── for tests ───────────────────────────────────────────────────────────────────────

    def person(self) -> Person:
        """A holder no other test of this process uses."""
        with self._lock:
            assert self._next < len(self.people), "the stack has no unused holder left: issue more"
            self._next += 1
            return self.people[self._next - 1]

    def claim_code(self, identifier: str) -> str:
        with self.issuer_client() as api:
            made = api.post(f"/v1/certificates/{identifier}/claim-code")
            assert made.status_code == 201, made.text
            return made.json()["code"]

    def verifier_db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.home / "verifier-330000" / "verifier.sqlite")

    def issuer_db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.home / "issuer" / "issuer.sqlite")

    def stop(self) -> None:
        from registry.chain.runner import AnvilNode

        for service in self.services:  # SIGTERM to all, then wait for each
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        for service in self.services:
            service.stop()
        AnvilNode(self.home / "chain", int(self.env["ECERT_CHAIN_PORT"])).stop()


_STACK: Stack | None = None


def stack_for(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    """The stack of this test process, started on first use and stopped when the session ends."""
    global _STACK
    if _STACK is None:
        made = Stack(tmp_path_factory.mktemp("wallet-stack"))
        try:
            made.start()
        except BaseException:
            made.stop()
            raise
        config.add_cleanup(made.stop)
        (ARTIFACTS).mkdir(parents=True, exist_ok=True)
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        (ARTIFACTS / f"stack-timings-{worker}.json").write_text(json.dumps(made.timings, indent=1))
        _STACK = made
    return _STACK


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def phone(browser: Any, **options: Any) -> Any:
    """A holder's phone: a narrow screen at twice the pixel density, Chinese by default."""
    return browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, locale="zh-CN", is_mobile=True,
                               has_touch=True, **options)  # fmt: skip


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def http_holder(stack: Stack, person: Person, password: str = "e2e-password-1") -> httpx.Client:
    """A holder signed in over plain HTTP (the browser's forms, without a browser), certificate claimed."""
    client = httpx.Client(base_url=stack.wallet.url, follow_redirects=False, timeout=30)
    token = csrf_of(client.get("/register").text)
    done = client.post("/register", data={"csrf_token": token, "name": person.name, "id_number": person.id_number,
                                          "password": password, "password_confirm": password})  # fmt: skip
    assert done.status_code == 303, done.text
    token = csrf_of(client.get("/claim").text)
    done = client.post("/claim", data={"csrf_token": token, "code": stack.claim_code(person.identifier)})
    assert done.status_code == 303, done.text
    client.card_id = done.headers["location"].split("/")[2].split("?")[0]  # type: ignore[attr-defined]
    return client


def artifact_dir(test_name: str) -> Path:
    path = ARTIFACTS / test_name
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.png"):
        old.unlink()
    return path


# An accessibility audit run on every page the browser tests visit: the page says its language,
# has one h1, every visible form control has a label, every image a text alternative, no
# positive tabindex (focus follows the reading order), and text contrast is at least `ratio`
# (WCAG 2.x: 4.5 for body text, 3 for large text; 7 and every text ≥ 22 px in elder mode).
AUDIT_JS = """
([ratio, minFont]) => {
  const problems = [];
  const lum = (c) => { const [r, g, b] = c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
                       return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const rgb = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const background = (el) => { for (let n = el; n; n = n.parentElement) { const c = rgb(getComputedStyle(n).backgroundColor);
                                 if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3); } return [255, 255, 255]; };
  if (!document.documentElement.lang) problems.push('html has no lang');
  if (document.querySelectorAll('h1').length !== 1) problems.push('expected one h1');
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (visible(el) && !(el.labels && el.labels.length) && !el.getAttribute('aria-label')) problems.push('unlabelled ' + (el.id || el.name));
  }
  for (const img of document.querySelectorAll('img')) if (!img.getAttribute('alt')) problems.push('image without alt ' + img.src.slice(0, 40));
  for (const el of document.querySelectorAll('[tabindex]')) if (parseInt(el.getAttribute('tabindex'), 10) > 0) problems.push('positive tabindex');
  for (const el of document.querySelectorAll('button, a')) if (visible(el) && !el.textContent.trim() && !el.getAttribute('aria-label')) problems.push('nameless control');
  for (const el of document.querySelectorAll('h1, h2, p, label, legend, a, button, dt, dd, li, span, strong, summary, figcaption')) {
    if (!visible(el) || !Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const style = getComputedStyle(el);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    if (size < minFont) problems.push(`font ${size}px < ${minFont}px on "${el.textContent.trim().slice(0, 20)}"`);
    const needed = (size >= 24 || (bold && size >= 18.66)) ? Math.min(ratio, ratio === 7 ? 4.5 : 3) : ratio;
    const fg = lum(rgb(style.color).slice(0, 3)), bg = lum(background(el));
    const contrast = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    if (contrast < needed) problems.push(`contrast ${contrast.toFixed(2)} < ${needed} on "${el.textContent.trim().slice(0, 20)}"`);
  }
  return problems;
}
"""


# axe-core from node_modules (npm, pinned): run through the DevTools protocol, which a page's CSP
# does not govern, so the audited page keeps its own script-src 'self'.
AXE_JS = (Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js").read_text("utf-8")
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`);
}"""


def audit_accessibility(page: Any, ratio: float = 4.5, min_font_px: float = 0) -> None:
    """axe-core with 0 violations, and our own stricter checks (elder mode's contrast and font size)."""
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.evaluate(f"() => {{ {AXE_JS}\n; window.axe = axe; }}")
    violations = page.evaluate(AXE_RUN)
    assert not violations, f"{page.url}: axe-core: {violations[:8]}"
    problems = page.evaluate(AUDIT_JS, [ratio, min_font_px])
    assert not problems, f"{page.url}: {problems[:8]}"
