"""Verifier nodes as their operators run them, for the API tests: one ECERT_HOME with its own
anvil chain, a registry, three authorities (330000, 310000, 440000), two agencies (杭州 330100
and 广州 440100) and certificates issued with `ecert issue`; then any number of
`ecert serve verifier --region R` subprocesses sharing that home (each node keeps its folder
`verifier-<region>`), and organisations registered with `ecert verifier org add`.

Not a conftest: a conftest here would shadow `tests/conftest.py` for other tests.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from service_process import ECERT, ServiceProcess, wait_for

from registry.certificate.types import TYPE_NAMES
from registry.chain.client import ChainClient
from registry.chain.runner import free_port

AGENCY_ZJ = "11330100002493028E"  # 杭州市市场监督管理局, region 330100 (authority 330000)
AGENCY_GD = "114401000075021133"  # 广州市市场监督管理局, region 440100 (authority 440000)
BUSINESS_LICENCE = "11100000000013338W001"
OTHER_TYPE = "11100000000013338W002"  # granted to 杭州 only; recognised by 330000 only
PROBLEM = "application/problem+json"
PERSON = "11010519491231002X"  # a valid 公民身份号码
AUTHORITIES = (
    ("330000", "浙江省数据局"),
    ("440000", "广东省政务服务数据管理局"),
    ("310000", "上海市大数据中心"),
)


def records(count: int, town: str = "杭州", start: int = 0) -> list[dict[str, Any]]:
    """Business-licence records (holder, number, validity, a few `ext` fields)."""
    return [
        {
            "holder": {"name": f"{town}第{start + i}号商贸有限公司", "code": PERSON},
            "number": f"{start + i:015d}",
            "validUntil": "2046-05-31",
            "ext": {"address": f"{town}市文三路{start + i}号", "scope": ["批发和零售业", "软件开发"]},
        }
        for i in range(count)
    ]


class Issued:
    """Holder packages written by `ecert issue`: `identifier → package path` (QR PNG beside it)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.paths = sorted(folder.glob("*.json"))

    def __len__(self) -> int:
        return len(self.paths)

    def package(self, i: int = 0) -> dict[str, Any]:
        return json.loads(self.paths[i].read_text(encoding="utf-8"))

    def identifier(self, i: int = 0) -> str:
        return self.paths[i].stem

    def qr(self, i: int = 0) -> Path:
        return self.paths[i].with_suffix(".png")


class StackHome:
    """The operators' side: one ECERT_HOME with its anvil node, registry and agencies."""

    def __init__(self, root: Path) -> None:
        self.chain_port = free_port()
        self.root = root
        self.rpc_url = f"http://127.0.0.1:{self.chain_port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ECERT_")},
            "ECERT_HOME": str(root / ".ecert"),
            "ECERT_CHAIN_PORT": str(self.chain_port),
            "ECERT_RPC_URL": self.rpc_url,
            "ECERT_KEYSTORE_PASSWORD": secrets.token_hex(12),
            "ECERT_KEYSTORE_SCRYPT_N": "1024",
            "ECERT_ISSUER_BATCH_WINDOW_S": "0.2",
            "ECERT_ISSUER_BATCH_MAX_WAIT_S": "0",
            "COLUMNS": "200",
        }
        self._client: ChainClient | None = None

    def ecert(
        self, *args: str, env: dict[str, str] | None = None, check: bool = True, timeout_s: float = 120
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*ECERT, *args],
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"ecert {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done

    def set_up(self, *, authorities: Iterable[tuple[str, str]] = AUTHORITIES) -> None:
        self.deploy()
        self.add_parties(authorities=authorities)

    def deploy(self) -> None:
        """Chain and registry: enough for verifier nodes to start (and index what follows)."""
        self.ecert("chain", "up")
        self.ecert("deploy")

    def add_parties(self, *, authorities: Iterable[tuple[str, str]] = AUTHORITIES) -> None:
        """Authorities, and the agencies of theirs: 杭州 (two types), 广州 (licences)."""
        regions = set()
        for region, name in authorities:
            self.ecert("authority", "add", "--region", region, "--name", name)
            regions.add(region)
        if "330000" in regions:
            self.ecert("agency", "add", "--region", "330100", "--code", AGENCY_ZJ, "--name", "杭州市市场监督管理局",
                       "--types", f"{BUSINESS_LICENCE},{OTHER_TYPE}")  # fmt: skip
        if "440000" in regions:
            self.ecert(
                "agency",
                "add",
                "--region",
                "440100",
                "--code",
                AGENCY_GD,
                "--name",
                "广州市市场监督管理局",
                "--types",
                BUSINESS_LICENCE,
            )

    def issue(
        self, agency: str, type_code: str, rows: list[dict[str, Any]], name: str, *, qr: bool = False
    ) -> Issued:
        """`ecert issue` of `rows` into `<root>/issued/<name>` (holder packages, QR PNGs with `qr`)."""
        source = self.root / f"{name}.jsonl"
        source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        out = self.root / "issued" / name
        self.ecert("issue", "--agency", agency, "--type", type_code, "--input", str(source), "--out", str(out), "--name", TYPE_NAMES[type_code],
                   *(["--qr"] if qr else []))  # fmt: skip
        issued = Issued(out)
        assert len(issued) == len(rows), f"{len(issued)} of {len(rows)} issued"
        return issued

    def set_status(self, identifier: str, status: str, reason: int) -> int:
        """`ecert status set`; the block the change landed in."""
        done = self.ecert("status", "set", identifier, "--status", status, "--reason", str(reason))
        return int(done.stdout.strip().rsplit("block", 1)[1].split()[0])

    @property
    def client(self) -> ChainClient:
        if self._client is None:
            self._client = ChainClient.connect(self.rpc_url)
        return self._client

    def head(self) -> int:
        return self.client.block_number()

    def block_time(self, number: int) -> int:
        return int(self.client.w3.eth.get_block(number)["timestamp"])

    def chain_down(self) -> None:
        self.ecert("chain", "down")

    def chain_up(self) -> None:
        self.ecert("chain", "up")

    def tear_down(self) -> None:
        self.ecert("chain", "down", check=False)


class VerifierNode(ServiceProcess):
    """`ecert serve verifier --region R` in a subprocess, with `ECERT_VERIFIER_*` from `settings`."""

    def __init__(self, home: StackHome, region: str, *, workers: int = 1, **settings: str) -> None:
        self.home = home
        self.region = region
        self.workers = workers
        port = free_port()
        env = {
            **home.env,
            "ECERT_VERIFIER_REGION": region,
            "ECERT_VERIFIER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        }
        env.update({f"ECERT_VERIFIER_{k.upper()}": v for k, v in settings.items()})
        args = ["serve", "verifier", "--region", region, "--port", str(port), "--workers", str(workers)]
        super().__init__(
            f"the verifier {region}", args, env, home.root / f"verifier-{region}-{port}.log", port
        )

    def start(self, timeout_s: float = 60.0) -> VerifierNode:
        super().start(timeout_s)
        return self

    @property
    def database_url(self) -> str:
        """The node's database: `ECERT_VERIFIER_DATABASE_URL`, else its SQLite file under the home."""
        if url := self.env.get("ECERT_VERIFIER_DATABASE_URL"):
            return url
        folder = self.home.root / ".ecert" / f"verifier-{self.region}"
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / 'verifier.sqlite'}"

    def register(self, *wanted: tuple[str, str, str]) -> list[str]:
        """Keys of organisations `(name, region, kind)` written into the node's database directly."""
        return register_orgs(self.database_url, wanted)

    def add_org(self, name: str, region: str, kind: str = "bank") -> str:
        """`ecert verifier org add` at this node; the API key (the last line it prints)."""
        done = self.home.ecert(
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
            self.region,
            env=self.env,
        )
        return done.stdout.strip().splitlines()[-1]

    def client(self, key: str | None = None, **headers: str) -> httpx.Client:
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def indexed_block(self) -> int:
        return int(httpx.get(f"{self.url}/healthz", timeout=5).json()["indexedBlock"])

    def wait_indexed(self, block: int | None = None, timeout_s: float = 30.0) -> int:
        """Until the node's index has reached `block` (default: the chain head now)."""
        target = self.home.head() if block is None else block
        return wait_for(
            lambda: (b := self.indexed_block()) >= target and b,
            timeout_s,
            what=f"for {self.region} to index block {target}",
        )


def start_all(nodes: Iterable[VerifierNode]) -> list[VerifierNode]:
    """Start nodes in parallel (each takes a couple of seconds to import and migrate)."""
    nodes = list(nodes)
    with ThreadPoolExecutor(len(nodes)) as pool:
        list(pool.map(VerifierNode.start, nodes))
    return nodes


def add_orgs(node: VerifierNode, wanted: Iterable[tuple[str, str, str]]) -> list[str]:
    """Several `org add` at one node, one after the other (they share its SQLite file)."""
    return [node.add_org(name, region, kind) for name, region, kind in wanted]


def register_orgs(database_url: str, wanted: Iterable[tuple[str, str, str]]) -> list[str]:
    """Organisations written straight into a node's database (what `org add` does, without the
    seconds a CLI process takes to start): for nodes whose keys are not under test."""
    from verifier.db import make_engine, migrate, sessions
    from verifier.orgs import Organisations

    engine = make_engine(database_url)
    try:
        migrate(engine)
        organisations = Organisations(sessions(engine), rate_per_min=1)
        return [organisations.add(name, region, kind)[1] for name, region, kind in wanted]
    finally:
        engine.dispose()


def assert_problem(
    response: httpx.Response, status: int | tuple[int, ...], code: str | None = None
) -> dict[str, Any]:
    """An RFC 9457 problem with a stable `code` (and the expected status); its body."""
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, (
        f"{response.status_code} not in {statuses}: {response.text[:500]}"
    )
    assert response.headers["content-type"].startswith(PROBLEM), response.headers["content-type"]
    body = response.json()
    assert body["status"] == response.status_code and body["code"]
    if code is not None:
        assert body["code"] == code, body
    return body
