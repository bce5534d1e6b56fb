"""A long-running `ecert serve …` subprocess for the tests that run services as operators do:
started, waited for until /healthz answers, stopped with SIGTERM as an init system stops it.
Shared by the API stacks and the browser stack (imported like `conftest`: `tests/` is on the path)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

from registry.chain.runner import free_port

ECERT = [sys.executable, "-c", "from registry.cli import main; main()"]
T = TypeVar("T")


def ecert_home_env(home: Path) -> dict[str, str]:
    """The environment of a fresh ECERT_HOME under `home`: its own chain port, a random keystore
    password and a fast scrypt (test keys only)."""
    port = free_port()
    return {
        **os.environ,
        "ECERT_HOME": str(home / ".ecert"), "ECERT_CHAIN_PORT": str(port), "ECERT_RPC_URL": f"http://127.0.0.1:{port}",
        "ECERT_KEYSTORE_PASSWORD": os.urandom(12).hex(), "ECERT_KEYSTORE_SCRYPT_N": "1024", "COLUMNS": "200",
    }  # fmt: skip


def wait_for(probe: Callable[[], T], timeout_s: float = 60.0, every_s: float = 0.1, what: str = "") -> T:
    """Call `probe()` until it returns something truthy; that value, or AssertionError."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"gave up waiting {what or 'for ' + getattr(probe, '__name__', 'probe')} after {timeout_s} s"
            )
        time.sleep(every_s)


class ServiceProcess:
    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        log_path: Path,
        port: int,
        command: list[str] = ECERT,
    ) -> None:
        self.name, self.args, self.env, self.log_path, self.command = name, args, env, log_path, command
        self.port, self.url = port, f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*self.command, *self.args], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_healthy(self, timeout_s: float = 60.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not answer within {timeout_s} s:\n{self.log()}")

    def start(self, timeout_s: float = 60.0) -> None:
        self.launch()
        self.wait_healthy(timeout_s)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM; the exit status (None if it had to be killed)."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
