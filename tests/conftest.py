"""Shared fixtures: one anvil node and one deployment per session, a snapshot per test.

Keys are made at run time (never literal); the node's unlocked dev account only pays gas.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from databases import postgres_database
from eth_account import Account
from eth_account.signers.local import LocalAccount

from registry.chain.client import ChainClient
from registry.chain.runner import AnvilNode, free_port
from registry.contracts.certificate_registry import CertificateRegistry
from registry.deploy import Deployment, deploy
from registry.settings import get_settings

TYPE_BUSINESS_LICENCE = "11100000000013338W001"  # defining authority USCC + 3 digits
TYPE_DRIVING_LICENCE = "11100000000013338W002"
ZJ_AGENCY_CODE = "11330100002493028E"  # 杭州市市场监督管理局 (made up, valid check char)
GD_AGENCY_CODE = "114401000075021133"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fail-on-skip", action="store_true",
        help="A skipped test fails the run: the README's test command installs everything every test needs.",
    )  # fmt: skip


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if session.config.getoption("--fail-on-skip") and skipped:
        reporter.ensure_newline()
        for report in skipped:
            reporter.write_line(
                f"skipped, which --fail-on-skip refuses: {report.nodeid} ({report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr})"
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _settings_of_this_test() -> Iterator[None]:
    """`get_settings()` is cached per process: a test that sets `ECERT_*` (monkeypatch) must not
    leave the next test of the same worker its chain port or home."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def fund(client: ChainClient, account: LocalAccount | str, ether: int = 100) -> None:
    client.fund(account if isinstance(account, str) else account.address, ether * 10**18)


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilNode]:
    node = AnvilNode(tmp_path_factory.mktemp("anvil"), free_port())
    node.start()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def client(anvil: AnvilNode) -> ChainClient:
    return ChainClient.connect(anvil.url)


@dataclass
class Roles:
    """One actor per role of the authorisation matrix."""

    root: LocalAccount
    authority: LocalAccount  # 330000 浙江
    other_authority: LocalAccount  # 440000 广东
    agency: LocalAccount  # key of an agency in 330100
    other_agency: LocalAccount  # key of an agency in 440100
    stranger: LocalAccount


@pytest.fixture(scope="session")
def roles(client: ChainClient) -> Roles:
    made = Roles(*(Account.create() for _ in range(6)))
    for account in vars(made).values():
        fund(client, account)
    return made


@pytest.fixture(scope="session")
def deployment(client: ChainClient, roles: Roles) -> Deployment:
    """The registry with 浙江 and 广东 authorities and one agency in each region."""
    deployed = deploy(client, roles.root)
    registry = deployed.registry(client)
    registry.add_authority(roles.root, roles.authority.address, 330000, "浙江省数据局")
    registry.add_authority(roles.root, roles.other_authority.address, 440000, "广东省政务服务数据管理局")
    registry.register_agency(
        roles.authority,
        ZJ_AGENCY_CODE,
        330100,
        "杭州市市场监督管理局",
        roles.agency.address,
        [TYPE_BUSINESS_LICENCE],
    )
    registry.register_agency(
        roles.other_authority,
        GD_AGENCY_CODE,
        440100,
        "广州市市场监督管理局",
        roles.other_agency.address,
        [TYPE_BUSINESS_LICENCE],
    )
    return deployed


@pytest.fixture
def chain(client: ChainClient, deployment: Deployment) -> Iterator[ChainClient]:
    """The session chain, reverted to its state before the test when the test ends."""
    snapshot = client.w3.provider.make_request("evm_snapshot", [])["result"]
    yield client
    client.w3.provider.make_request("evm_revert", [snapshot])
    client._held_nonces.clear()


@pytest.fixture
def registry(chain: ChainClient, deployment: Deployment) -> CertificateRegistry:
    return deployment.registry(chain)


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not os.environ.get("ECERT_TEST_POSTGRES_URL"), reason="set ECERT_TEST_POSTGRES_URL to run on PostgreSQL"))])  # fmt: skip
def sqlite_or_postgres_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of each engine: a SQLite file, and a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ecert.sqlite'}"
        return
    with postgres_database(os.environ["ECERT_TEST_POSTGRES_URL"]) as url:
        yield url
