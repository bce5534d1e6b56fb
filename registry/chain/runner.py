"""Local chains: an anvil or Hardhat node from `node_modules`, or eth-tester in process.

Both nodes are started directly (not through npx: faster, one PID to stop), bound to loopback,
with chain id 31337 and the `cancun` hardfork, their PID and log under their directory. anvil
dumps its state to `<home>/chain/state.json` every second and on exit, so `ecert chain down` /
`up` keeps history; Hardhat's node keeps nothing across a restart (it is the second EVM the tests
run the core scenario on, and what operators who already run Hardhat can point ecert at).
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from registry.errors import ChainUnavailable, ConfigError

if TYPE_CHECKING:
    from web3 import Web3

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHAIN_ID = 31337
HARDFORK = "cancun"
DEV_ACCOUNTS = 2
DEV_BALANCE_ETH = 1_000_000


def anvil_binary() -> Path:
    """The anvil executable shipped inside the `@foundry-rs/anvil-<os>-<arch>` npm package."""
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower()
    )
    system = platform.system().lower()
    candidate = PROJECT_ROOT / "node_modules" / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / "anvil"
    if not candidate.exists():
        raise ConfigError(f"anvil not found at {candidate}: run `npm ci` in the project root first")
    return candidate


def hardhat_binary() -> Path:
    """Hardhat's command from the `hardhat` npm package (a node script: one process, no npx)."""
    candidate = PROJECT_ROOT / "node_modules" / ".bin" / "hardhat"
    if not candidate.exists():
        raise ConfigError(f"Hardhat not found at {candidate}: run `npm ci` in the project root first")
    return candidate


@dataclass
class LocalNode:
    """One development node process bound to 127.0.0.1:`port`, its files under `directory`."""

    directory: Path
    port: int = 8545
    block_time_s: float | None = None
    engine: ClassVar[str] = "node"
    start_timeout_s: ClassVar[float] = 10.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.directory / f"{self.engine}.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / f"{self.engine}.log"

    def command(self) -> list[str]:
        """The command line that starts the node (files it needs are written here)."""
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def pid(self) -> int | None:
        """The PID of the running node, or None (a stale PID file is removed)."""
        try:
            pid = int(self.pid_file.read_text())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def start(self, timeout_s: float | None = None) -> int:
        """Start the node in the background (no-op if running) and wait until it answers."""
        if (pid := self.pid()) is not None:
            return pid
        if _port_open(self.port):
            raise ConfigError(f"Port {self.port} is taken by another process: choose another with --port")
        timeout_s = self.start_timeout_s if timeout_s is None else timeout_s
        self.directory.mkdir(parents=True, exist_ok=True)
        args = self.command()
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                cwd=PROJECT_ROOT, env=self.environment(),
            )  # fmt: skip
        self.pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + timeout_s
        while not _port_open(self.port):
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise ChainUnavailable(
                    f"{self.engine} exited at start (code {process.returncode}): see {self.log_file}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ChainUnavailable(
                    f"{self.engine} did not answer on port {self.port} within {timeout_s:.0f} s: see {self.log_file}"
                )
            time.sleep(0.05)
        return process.pid

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop the node (SIGTERM, which lets anvil write its state); True if one was running."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True


@dataclass
class AnvilNode(LocalNode):
    """anvil, its state kept in `state.json` across restarts."""

    engine: ClassVar[str] = "anvil"

    @property
    def state_file(self) -> Path:
        return self.directory / "state.json"

    def command(self) -> list[str]:
        args = [
            str(anvil_binary()), "--host", "127.0.0.1", "--port", str(self.port),
            "--chain-id", str(CHAIN_ID), "--hardfork", HARDFORK,
            "--state", str(self.state_file), "--state-interval", "1",
            "--accounts", str(DEV_ACCOUNTS), "--balance", str(DEV_BALANCE_ETH),
            *(["--steps-tracing"] if os.environ.get("ECERT_ANVIL_TRACING") else []),
        ]  # fmt: skip
        if self.block_time_s:
            args += ["--block-time", str(self.block_time_s)]
        return args


@dataclass
class HardhatNode(LocalNode):
    """Hardhat's node (EDR), configured like anvil by a `hardhat.config.js` of its own in
    `directory`: nothing of the project's config (no compile, no network at start), and a mined
    transaction that reverts gives a receipt with status 0, as a real node does, not an RPC error."""

    engine: ClassVar[str] = "hardhat"
    start_timeout_s: ClassVar[float] = 60.0  # Node.js loads Hardhat in a few seconds

    @property
    def config_file(self) -> Path:
        return self.directory / "hardhat.config.js"

    def command(self) -> list[str]:
        network: dict[str, object] = {
            "chainId": CHAIN_ID, "hardfork": HARDFORK, "throwOnTransactionFailures": False,
            "accounts": {"count": DEV_ACCOUNTS, "accountsBalance": str(DEV_BALANCE_ETH * 10**18)},
        }  # fmt: skip
        if self.block_time_s:
            network["mining"] = {"auto": False, "interval": round(self.block_time_s * 1000)}
        config = {"networks": {"hardhat": network}, "paths": {"root": str(self.directory)}}
        self.config_file.write_text(f"module.exports = {json.dumps(config, indent=2)};\n", encoding="utf-8")
        return [
            str(hardhat_binary()), "node", "--config", str(self.config_file),
            "--hostname", "127.0.0.1", "--port", str(self.port),
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        # never ask for telemetry consent: there is no one at a terminal to answer
        return {**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true"}


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    """A TCP port free on loopback right now (for tests and throwaway nodes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def in_process_web3() -> Web3:
    """A Web3 on an eth-tester chain in this process: fast tests that need no real node."""
    from web3 import EthereumTesterProvider, Web3

    return Web3(EthereumTesterProvider())
