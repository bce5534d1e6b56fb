"""Local chains: an anvil node from `node_modules` with its state on disk, or eth-tester in process.

anvil is started directly (not through npx: faster, one PID to stop) and dumps its state to
`<home>/chain/state.json` every second and on exit, so `ecert chain down` / `up` keeps history.
"""

from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from registry.errors import ChainUnavailable, ConfigError

if TYPE_CHECKING:
    from web3 import Web3

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHAIN_ID = 31337
HARDFORK = "cancun"


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


@dataclass
class AnvilNode:
    """One anvil process bound to 127.0.0.1:`port`, its files under `directory`."""

    directory: Path
    port: int = 8545
    block_time_s: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.directory / "anvil.pid"

    @property
    def state_file(self) -> Path:
        return self.directory / "state.json"

    @property
    def log_file(self) -> Path:
        return self.directory / "anvil.log"

    def pid(self) -> int | None:
        """The PID of the running node, or None (a stale PID file is removed)."""
        try:
            pid = int(self.pid_file.read_text())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def start(self, timeout_s: float = 10.0) -> int:
        """Start the node in the background (no-op if running) and wait until it answers."""
        if (pid := self.pid()) is not None:
            return pid
        if _port_open(self.port):
            raise ConfigError(f"Port {self.port} is taken by another process: choose another with --port")
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            str(anvil_binary()), "--host", "127.0.0.1", "--port", str(self.port),
            "--chain-id", str(CHAIN_ID), "--hardfork", HARDFORK,
            "--state", str(self.state_file), "--state-interval", "1",
            "--accounts", "2", "--balance", "1000000", *(["--steps-tracing"] if os.environ.get("ECERT_ANVIL_TRACING") else []),
        ]  # fmt: skip
        if self.block_time_s:
            args += ["--block-time", str(self.block_time_s)]
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self.pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + timeout_s
        while not _port_open(self.port):
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise ChainUnavailable(
                    f"anvil exited at start (code {process.returncode}): see {self.log_file}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ChainUnavailable(f"anvil did not answer on port {self.port} within {timeout_s:.0f} s")
            time.sleep(0.05)
        return process.pid

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop the node, letting it write its state; True if one was running."""
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
