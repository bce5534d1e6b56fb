"""An issuer as its operators run it, for the API tests: a temporary ECERT_HOME with a chain,
a deployment, two authorities and two agencies (made with the `ecert` command), and
`ecert serve issuer` as a subprocess on a free port, on SQLite or on a throwaway PostgreSQL
database. Not a conftest: a conftest here would shadow `tests/conftest.py` for other tests."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from service_process import ECERT, ServiceProcess

from registry.chain.client import ChainClient
from registry.chain.runner import free_port
from registry.contracts.certificate_registry import CertificateRegistry
from registry.deploy import Deployment

AGENCY_A = "11330100002493028E"  # 杭州, region 330100 (authority 330000)
AGENCY_B = "114401000075021133"  # 广州, region 440100 (authority 440000)
TYPE = "11100000000013338W001"
POSTGRES_ENV = "ECERT_TEST_POSTGRES_URL"


class IssuerHome:
    """The operator's side: one ECERT_HOME with its own anvil node and registry."""

    def __init__(self, root: Path) -> None:
        port = free_port()
        self.root = root
        self.rpc_url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "ECERT_HOME": str(root / ".ecert"),
            "ECERT_CHAIN_PORT": str(port),
            "ECERT_RPC_URL": self.rpc_url,
            "ECERT_KEYSTORE_PASSWORD": secrets.token_hex(12),
            "ECERT_KEYSTORE_SCRYPT_N": "1024",
            "ECERT_ISSUER_BATCH_WINDOW_S": "0.2",
            "ECERT_ISSUER_BATCH_MAX_WAIT_S": "0",
            "COLUMNS": "200",
        }

    def ecert(
        self, *args: str, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*ECERT, *args], env=env or self.env, capture_output=True, text=True, timeout=120
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"ecert {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done

    def set_up(self) -> None:
        self.ecert("chain", "up")
        self.ecert("deploy")
        self.ecert("authority", "add", "--region", "330000", "--name", "浙江省数据局")
        self.ecert("authority", "add", "--region", "440000", "--name", "广东省政务服务数据管理局")
        self.ecert(
            "agency",
            "add",
            "--region",
            "330100",
            "--code",
            AGENCY_A,
            "--name",
            "杭州市市场监督管理局",
            "--types",
            TYPE,
        )
        self.ecert(
            "agency",
            "add",
            "--region",
            "440100",
            "--code",
            AGENCY_B,
            "--name",
            "广州市市场监督管理局",
            "--types",
            TYPE,
        )

    def tear_down(self) -> None:
        self.ecert("chain", "down", check=False)

    def registry(self) -> CertificateRegistry:
        """A binding of our own, as a verifier would make it."""
        client = ChainClient.connect(self.rpc_url)
        return Deployment.load(self.root / ".ecert" / "deployment.json").registry(client)


class IssuerServer(ServiceProcess):
    """`ecert serve issuer` in a subprocess; `database_url=None` is the default SQLite file."""

    def __init__(self, home: IssuerHome, name: str, database_url: str | None = None) -> None:
        self.home = home
        env = dict(home.env)
        if database_url:
            env["ECERT_ISSUER_DATABASE_URL"] = database_url
        self.database_url = database_url or f"sqlite:///{home.root / '.ecert' / 'issuer' / 'issuer.sqlite'}"
        port = free_port()
        super().__init__(
            f"the issuer ({name})",
            ["serve", "issuer", "--port", str(port)],
            env,
            home.root / f"issuer-{name}.log",
            port,
        )

    def api_key(self, agency: str, scopes: str, label: str = "test") -> str:
        done = self.home.ecert(
            "issuer",
            "api-key",
            "create",
            "--agency",
            agency,
            "--scopes",
            scopes,
            "--label",
            label,
            env=self.env,
        )
        return done.stdout.strip().splitlines()[-1]

    def client(self, token: str | None = None, **headers: str) -> httpx.Client:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@contextmanager
def issuer_home(folder: Path) -> Iterator[IssuerHome]:
    """An `IssuerHome` set up in `folder` (a module fixture's), torn down after."""
    made = IssuerHome(folder)
    try:
        made.set_up()
        yield made
    finally:
        made.tear_down()


@contextmanager
def issuer_server(home: IssuerHome, backend: str) -> Iterator[IssuerServer]:
    """`ecert serve issuer` for `home`, stopped after."""
    running = IssuerServer(home, backend)
    running.start()
    try:
        yield running
    finally:
        running.stop()
