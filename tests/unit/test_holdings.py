"""Whose shares and access log a wallet may reach at the verifier node (issue 10, point 1): a share
is its maker wallet's, for the holder it named; a certificate is held by a wallet for a holder
once it showed the full holder package; and migration 0003 binds the shares made before it. On
SQLite and on PostgreSQL (when ECERT_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from databases import postgres_database
from test_wallet_app import ALICE, BOB, packages

from registry.database import make_engine, sessions
from registry.errors import CertificateError, NotFound
from verifier.db import MIGRATIONS
from verifier.db import migrate as migrate_verifier
from verifier.holdings import Holdings
from verifier.models import Base
from verifier.orgs import Organisations
from verifier.shares import Shares

POSTGRES_URL = os.environ.get("ECERT_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not POSTGRES_URL, reason="set ECERT_TEST_POSTGRES_URL to run on PostgreSQL"))])  # fmt: skip
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'node.sqlite'}"
        return
    with postgres_database(POSTGRES_URL) as url:
        yield url


@pytest.fixture
def node(database_url: str) -> Iterator[tuple[Shares, Holdings, int, int]]:
    """The node's shares and holdings, and two wallet organisations (their ids)."""
    engine = make_engine(database_url)
    migrate_verifier(engine)
    made = sessions(engine)
    organisations = Organisations(made, rate_per_min=60)
    mine, _ = organisations.add("浙里办", "330000", "wallet")
    theirs, _ = organisations.add("粤省事", "440000", "wallet")
    yield Shares(made, secrets.token_bytes(32), secrets.token_bytes(32)), Holdings(made), mine, theirs
    engine.dispose()


def test_a_share_is_reached_only_by_its_wallet_for_its_holder(node) -> None:
    shares, _, mine, theirs = node
    [package] = packages(("王小丽", ALICE))
    share, _ = shares.create(mine, "h-1", package.disclose(["holder.name"]), purpose="租房", lifetime=dt.timedelta(hours=1),
                             dynamic=True)  # fmt: skip
    for wallet, holder in ((theirs, "h-1"), (mine, "h-2")):
        assert shares.list(wallet, holder) == []
        for reach in (shares.get, shares.withdraw):
            with pytest.raises(NotFound) as refused:
                reach(wallet, holder, share.id)
            assert refused.value.code == "SHARE_NOT_FOUND"
    assert [s.id for s in shares.list(mine, "h-1")] == [share.id]
    assert not shares.get(mine, "h-1", share.id).withdrawn  # the refused withdrawals changed nothing
    assert shares.withdraw(mine, "h-1", share.id).withdrawn


def test_only_a_full_package_that_hashes_to_its_digest_is_held(node) -> None:
    _, holdings, mine, _ = node
    [package] = packages(("王小丽", ALICE))
    for shown, code in ((package.disclose(["holder.name"]), "CERT_PARTIAL"),
                        (replace(package, leaves=package.leaves[1:]), "CERT_TAMPERED")):  # fmt: skip
        with pytest.raises(CertificateError) as refused:
            holdings.hold(mine, "h-1", shown)
        assert refused.value.code == code
    assert holdings.held(mine, "h-1") == []
    first, new = holdings.hold(mine, "h-1", package)
    again, new_again = holdings.hold(mine, "h-1", package)
    assert (new, new_again) == (True, False) and again == first
    assert first.digest == "0x" + package.digest.hex() and holdings.held(mine, "h-1") == [first]


def test_the_log_scope_is_what_the_wallet_holds_and_shared_for_that_holder(node) -> None:
    shares, holdings, mine, theirs = node
    alices, bobs = packages(("王小丽", ALICE), ("李大壮", BOB))
    held, _ = holdings.hold(mine, "alice", alices)
    share, _ = shares.create(
        mine, "bob", bobs.disclose(["holder.name"]), purpose="", lifetime=dt.timedelta(hours=1)
    )
    assert holdings.log_scope(mine, "alice") == ([held.digest], [])
    assert holdings.log_scope(mine, "bob") == ([], [share.id])  # a disclosure binds its share, not the digest
    assert holdings.log_scope(theirs, "alice") == ([], []) and holdings.log_scope(mine, "carol") == ([], [])
    assert holdings.log_scope(mine, "alice", digests=[held.digest]) == ([held.digest], [])
    for wallet, holder, named in ((theirs, "alice", {"digests": [held.digest]}), (mine, "bob", {"digests": [held.digest]}),
                                  (theirs, "bob", {"share_ids": [share.id]}), (mine, "alice", {"share_ids": [share.id]})):  # fmt: skip
        with pytest.raises(NotFound) as refused:
            holdings.log_scope(wallet, holder, **named)
        assert refused.value.code == "ACCESS_LOG_NOT_FOUND"


# ─── migration 0003 ──────────────────────────────────────────────────────────────────────


def upgrade(engine: sa.Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("version_table", "alembic_version_verifier")  # as `registry.database.migrate`
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def shares_before_0003(engine: sa.Engine, wallets: int) -> None:
    """A node at 0002 with `wallets` wallet organisations, a bank, and two live shares."""
    now = dt.datetime.now(dt.UTC)
    upgrade(engine, "0002")
    with engine.begin() as connection:
        for n in range(wallets):
            connection.execute(sa.text("INSERT INTO organisations (name, region, kind, created_at) "
                                       "VALUES (:name, '330000', 'wallet', :now)"), {"name": f"钱包{n}", "now": now})  # fmt: skip
        connection.execute(sa.text("INSERT INTO organisations (name, region, kind, created_at) "
                                   "VALUES ('某银行', '330100', 'bank', :now)"), {"now": now})  # fmt: skip
        for n in range(2):
            connection.execute(sa.text(
                "INSERT INTO shares (id, token_hash, holder_ref, digest, presentation, fields, purpose, single_use, dynamic, "
                "created_at, expires_at) VALUES (:id, :token, 'h-1', :digest, :blob, '[]', '', false, false, :now, :until)"),
                {"id": f"{n:032x}", "token": f"{n:064x}", "digest": "0x" + "ab" * 32, "blob": b"x", "now": now,
                 "until": now + dt.timedelta(days=1)})  # fmt: skip


def test_0003_binds_earlier_shares_to_the_only_wallet_that_can_have_made_them(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        shares_before_0003(engine, wallets=1)
        upgrade(engine, "0003")
        with engine.connect() as connection:
            [wallet] = connection.execute(
                sa.text("SELECT id FROM organisations WHERE kind = 'wallet'")
            ).scalars()
            rows = connection.execute(sa.text("SELECT wallet_org_id, withdrawn_at FROM shares")).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [(wallet, None), (wallet, None)]


def test_0003_ends_earlier_shares_when_several_wallets_could_have_made_them(database_url: str) -> None:
    """Bound to no wallet, a live share would be a link no one could withdraw any more."""
    engine = make_engine(database_url)
    try:
        shares_before_0003(engine, wallets=2)
        upgrade(engine, "0003")
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT wallet_org_id, withdrawn_at FROM shares")).all()
    finally:
        engine.dispose()
    assert len(rows) == 2 and all(wallet is None and withdrawn is not None for wallet, withdrawn in rows)


LATER_SHARE_COLUMNS = {"identified_only"}


def test_0003_makes_the_shares_and_holdings_tables_the_models_describe(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine, "0003")
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        upgrade_then_down = make_engine(database_url)
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("version_table", "alembic_version_verifier")
        with upgrade_then_down.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0002")
        upgrade_then_down.dispose()
    finally:
        engine.dispose()

    def table(difference) -> str:
        """The table an autogenerate difference is about (`(op, schema, table, …)` or `(op, object)`)."""
        first = difference[0] if isinstance(difference, list) else difference
        if len(first) > 2 and isinstance(first[2], str):
            return first[2]
        thing = first[1]
        if isinstance(thing, sa.Table):
            return thing.name
        owner = getattr(thing, "table", None)
        return getattr(owner if owner is not None else getattr(thing, "parent", None), "name", "")

    def later(difference) -> bool:
        """A column a later migration adds (0007: shares.identified_only)."""
        first = difference[0] if isinstance(difference, list) else difference
        return first[0] == "add_column" and getattr(first[3], "name", "") in LATER_SHARE_COLUMNS

    assert [d for d in differences if table(d) in ("shares", "holdings") and not later(d)] == []
