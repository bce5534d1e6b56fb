"""`ecert demo`, the README's first command, as a new user runs it: everything comes up, each
step says what it does and how long it took, the printed sign-ins, keys and commands are whole
(the output goes to a file, which rich would wrap at 80 columns) and work, the password hint is
the wallet's rule, and Ctrl-C (SIGTERM) stops the services."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from registry.chain.runner import free_port
from wallet.passwords import RULE

pytestmark = pytest.mark.chain


def test_demo_starts_everything_with_working_demo_data(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("chain", "issuer", "verifier", "wallet")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECERT_") and k != "COLUMNS"}
    env["ECERT_KEYSTORE_SCRYPT_N"] = "1024"  # the demo makes its own keystore password
    options = ["--home", str(tmp_path / ".ecert"), "--chain-port", str(ports["chain"]),
               *(f"--{name}-port={ports[name]}" for name in ("issuer", "verifier", "wallet"))]  # fmt: skip
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "registry", "demo", *options],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        deadline = time.monotonic() + 240
        while "Ctrl-C stops the services" not in log.read_text() and time.monotonic() < deadline:
            assert demo.poll() is None, log.read_text()
            time.sleep(0.5)
        text = log.read_text()
        assert "ecert demo is up" in text, text
        bank_key = re.search(r"(vk_[\w-]+)", text).group(1)
        assert re.search(r"李四\s+身份证号 11010519491231002X\s+密码 demo-", text)
        assert re.search(r"claim with code:\n    ([A-Z2-9]{4}-){2}[A-Z2-9]{4}\n", text)
        for step in (
            "chain: anvil",
            "registry contracts",
            "issuing sample 营业执照",
            "API keys",
            "services:",
            "demo holders",
        ):
            assert re.search(
                r"^\[ *\d+\.\d s\] ✓ " + re.escape(step) + r".* \(\d+\.\d s\)$", text, re.MULTILINE
            ), step
        assert re.search(r"^stored 3/3 · sealed 3/3 · anchored 3/3 · confirmed 3/3$", text, re.MULTILINE)
        assert f"password rule 密码规则: {RULE['en']} / {RULE['zh']}\n" in text
        command = re.search(
            r"^    (ECERT_HOME='.+' ECERT_RPC_URL=\S+ ecert verify '(.+)')$", text, re.MULTILINE
        )
        assert command and Path(command.group(2)).is_file(), (
            text
        )  # printed whole, with what it needs to reach this demo
        bare = {k: v for k, v in env.items() if k not in ("ECERT_HOME", "ECERT_RPC_URL", "ECERT_CHAIN_PORT")}
        bare["PATH"] = f"{Path(sys.executable).parent}:{bare['PATH']}"
        copied = subprocess.run(
            ["bash", "-c", command.group(1)],
            env=bare,
            cwd=tmp_path.parent,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert copied.returncode == 0 and "verdict: VALID" in copied.stdout, copied.stdout + copied.stderr
        assert re.search(r"^    vk_[\w-]{43}$", text, re.MULTILINE) and re.search(
            r"^    ek_[\w-]{43}$", text, re.MULTILINE
        )

        assert httpx.get(f"http://127.0.0.1:{ports['wallet']}/", timeout=10).status_code == 200
        package = json.loads(
            sorted((tmp_path / ".ecert" / "demo" / "certificates").glob("*.json"))[0].read_text()
        )
        answer = httpx.post(
            f"http://127.0.0.1:{ports['verifier']}/v1/verifications",
            json={"package": package, "purpose": "demo check"}, headers={"Authorization": f"Bearer {bank_key}"}, timeout=20,
        )  # fmt: skip
        assert (answer.status_code, answer.json()["verdict"]) == (200, "VALID")

        # the front desk: its URL, a clerk's sign-in and the printed command for the current code
        assert f"核验前台     http://127.0.0.1:{ports['verifier']}/desk" in text
        clerk = re.search(r"username 用户名 (\S+)  password 密码 (\S+)", text)
        code_command = re.search(r"the current code 当前动态口令:\n    (.+)\n", text)
        assert clerk and code_command, text
        code = subprocess.run(shlex.split(code_command.group(1)), capture_output=True, text=True, check=True)
        desk = f"http://127.0.0.1:{ports['verifier']}"
        with httpx.Client(base_url=desk, timeout=20, headers={"Origin": desk}) as clerk_browser:
            token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', clerk_browser.get("/desk").text)
            assert token
            signed_in = clerk_browser.post("/desk/login", data={
                "csrf_token": token.group(1), "username": clerk.group(1), "password": clerk.group(2),
                "code": code.stdout.strip()})  # fmt: skip
            assert signed_in.status_code == 303, signed_in.text[-500:]
            assert "王柜员" in clerk_browser.get("/desk").text

        # the agency console: a clerk, an approver and an auditor of the demo agency, the clerk signs in
        issuer = f"http://127.0.0.1:{ports['issuer']}"
        assert f"agency console 机构控制台 {issuer}/console" in text
        staff = {
            m.group(1): (m.group(2), m.group(3), m.group(4))
            for m in re.finditer(
                r"^    (clerk|approver|auditor) \S+  username 用户名 (\S+)  password 密码 (\S+)\n"
                r"      current code 动态口令: (.+)$", text, re.MULTILINE)
        }  # fmt: skip
        assert set(staff) == {"clerk", "approver", "auditor"}, text
        username, password, command = staff["clerk"]
        code = subprocess.run(shlex.split(command), capture_output=True, text=True, check=True)
        with httpx.Client(base_url=issuer, timeout=20, headers={"Origin": issuer}) as agency_browser:
            token = re.search(
                r'name="csrf_token" value="([0-9a-f]+)"', agency_browser.get("/console/login").text
            )
            assert token
            signed_in = agency_browser.post("/console/login", data={
                "csrf_token": token.group(1), "username": username, "password": password,
                "code": code.stdout.strip()})  # fmt: skip
            assert signed_in.status_code == 303, signed_in.text[-500:]
            home = agency_browser.get("/console").text
            assert "李娜" in home and 'data-role="clerk"' in home
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.send_signal(signal.SIGINT)  # an impatient second stop must not cut the first one short
        assert demo.wait(timeout=60) == 0, log.read_text()[-2000:]
        assert "demo stopped" in log.read_text()
        chain = {**env, "ECERT_HOME": str(tmp_path / ".ecert"), "ECERT_CHAIN_PORT": str(ports["chain"])}
        subprocess.run(
            [sys.executable, "-m", "registry", "chain", "down"], env=chain, capture_output=True, timeout=60
        )
    for port in (ports["issuer"], ports["verifier"], ports["wallet"]):
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
