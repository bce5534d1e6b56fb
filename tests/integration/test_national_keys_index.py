"""The agencies' SM2 keys (national co-seal) through the indexer, the offline trust snapshot and the
verifier's readers, on a real anvil and a real database: every reader answers `national_keys(code)`
as the chain does, history "as of T" folds like the contract, and a reorg takes a key away again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import GD_AGENCY_CODE, ZJ_AGENCY_CODE, Roles
from sqlalchemy import Engine, func, select

from registry.chain.client import ChainClient
from registry.contracts.certificate_registry import CertificateRegistry
from registry.contracts.trust_registry import NationalKeyInfo
from registry.database import make_engine
from registry.deploy import Deployment
from registry.errors import EcertError
from registry.indexer import History, Indexer
from registry.indexer.store import IndexBase, NationalKey, NationalKeyChange, table
from registry.national import generate_private_key, key_id, public_key
from verifier.chain_reader import RegistryReader
from verifier.offline import SnapshotReader
from verifier.readers import HeadTracker, IndexReader
from verifier.receipts import ReceiptSigner
from verifier.snapshot import load_snapshot, parse_snapshot, save_snapshot, sign_snapshot, snapshot_body

pytestmark = pytest.mark.chain


POSTGRES_URL = os.environ.get("ECERT_TEST_POSTGRES_URL")


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(
                not POSTGRES_URL, reason="set ECERT_TEST_POSTGRES_URL to run on PostgreSQL"
            ),
        ),
    ]
)
def engine(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh, empty index database per test (SQLite, and PostgreSQL when configured)."""
    made = make_engine(f"sqlite:///{tmp_path / 'index.db'}" if request.param == "sqlite" else POSTGRES_URL)  # type: ignore[arg-type]
    IndexBase.metadata.drop_all(made)
    yield made
    IndexBase.metadata.drop_all(made)
    made.dispose()


def rpc(chain: ChainClient, method: str, *params: object) -> object:
    answer = chain.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in answer, answer
    return answer["result"]


def now(chain: ChainClient) -> int:
    return int(chain.w3.eth.get_block("latest")["timestamp"])


def advance(chain: ChainClient, seconds: int) -> int:
    rpc(chain, "evm_increaseTime", seconds)
    rpc(chain, "evm_mine")
    return now(chain)


def indexer(
    chain: ChainClient, registry: CertificateRegistry, engine: Engine, deployment: Deployment
) -> Indexer:
    return Indexer(chain, registry, engine, confirmations=0, start_block=deployment.block_number)


def new_sm2() -> bytes:
    return public_key(generate_private_key())


def rows(engine: Engine, model: type[IndexBase]) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table(model))).scalar_one()


def history_of_three_keys(chain: ChainClient, registry: CertificateRegistry, roles: Roles) -> dict[str, int]:
    """On 330100: key A (by the authority) later retired, key B (by the agency's own key) valid from
    the future and compromised since before that; on 440100: key C. Returns the moments."""
    a, b, c = new_sm2(), new_sm2(), new_sm2()
    registry.add_national_key(roles.authority, ZJ_AGENCY_CODE, a)
    added = now(chain)
    registry.add_national_key(roles.agency, ZJ_AGENCY_CODE, b, added + 100)
    registry.add_national_key(roles.other_authority, GD_AGENCY_CODE, c)
    advance(chain, 30)
    registry.retire_national_key(roles.agency, key_id(a))
    retired = now(chain)
    advance(chain, 200)
    registry.compromise_national_key(roles.authority, key_id(b), added + 150)
    return {"added": added, "retired": retired, "compromised_at": now(chain), "since": added + 150}


def test_index_and_readers_answer_national_keys_as_the_chain(
    chain, registry, roles: Roles, deployment, engine
) -> None:
    moments = history_of_three_keys(chain, registry, roles)
    indexer(chain, registry, engine, deployment).sync()
    history = History(engine, max_age_s=0)
    on_chain = RegistryReader(registry)
    for code in (ZJ_AGENCY_CODE, GD_AGENCY_CODE):
        expected = registry.national_keys(code)
        assert history.national_keys(code) == expected == on_chain.national_keys(code)
    a, b = registry.national_keys(ZJ_AGENCY_CODE)
    assert (a.retired_at, a.compromised_since) == (moments["retired"], 0)
    assert (b.valid_from, b.retired_at, b.compromised_since) == (moments["added"] + 100, 0, moments["since"])
    assert len(a.public_key) == 64 and key_id(a.public_key) == a.key_id
    assert history.national_keys("91330100MA27XYZ12Q") == on_chain.national_keys("91330100MA27XYZ12Q") == []

    # as of a moment before the retirement and the compromise: the record as the chain held it then
    then = history.national_keys(ZJ_AGENCY_CODE, as_of=moments["retired"] - 1)
    assert [(k.retired_at, k.compromised_since) for k in then] == [(0, 0), (0, 0)]
    assert history.national_keys(ZJ_AGENCY_CODE, as_of=moments["added"] - 1) == []
    # the verifier's question: good at the anchoring time, by what is known now
    assert a.is_good_at(moments["retired"]) and not a.is_good_at(moments["retired"] + 1)
    assert b.is_good_at(moments["since"] - 1) and not b.is_good_at(moments["since"])
    known = history.national_key_known_bad(b.key_id, moments["since"])
    assert known == (b, moments["compromised_at"])
    assert history.national_key_known_bad(b.key_id, moments["since"] - 1) is None


def test_the_index_reader_answers_from_the_index_while_fresh(
    chain, registry, roles: Roles, deployment, engine
) -> None:
    sm2 = new_sm2()
    registry.add_national_key(roles.authority, ZJ_AGENCY_CODE, sm2)
    head = HeadTracker(chain, poll_s=0.05)
    try:
        stale = IndexReader(History(engine, max_age_s=0), RegistryReader(registry), head, max_lag=0)
        # nothing indexed yet: the index is stale, so the chain answers
        assert [k.public_key for k in stale.national_keys(ZJ_AGENCY_CODE)] == [sm2]
        indexer(chain, registry, engine, deployment).sync()
        fresh = IndexReader(History(engine, max_age_s=0), RegistryReader(registry), head, max_lag=5)
        assert fresh.national_keys(ZJ_AGENCY_CODE) == registry.national_keys(ZJ_AGENCY_CODE)
    finally:
        head.close()


def test_a_reorg_takes_an_indexed_national_key_away(
    chain, registry, roles: Roles, deployment, engine
) -> None:
    kept = new_sm2()
    registry.add_national_key(roles.authority, ZJ_AGENCY_CODE, kept)
    rpc(chain, "evm_mine")
    orphan = new_sm2()
    added = registry.add_national_key(roles.authority, ZJ_AGENCY_CODE, orphan)
    registry.retire_national_key(roles.authority, key_id(kept))
    follow = indexer(chain, registry, engine, deployment)
    follow.sync()
    history = History(engine, max_age_s=0)
    assert [k.key_id for k in history.national_keys(ZJ_AGENCY_CODE)] == [key_id(kept), key_id(orphan)]
    assert rows(engine, NationalKeyChange) == 1

    depth = chain.block_number() - added.block_number + 1  # the blocks of the orphan's add and the retirement
    rpc(chain, "anvil_reorg", depth, [])
    assert registry.agency_national_keys(ZJ_AGENCY_CODE) == [key_id(kept)]

    report = follow.sync()
    assert report.reorged and report.rolled_back_to is not None
    assert report.rolled_back_to < added.block_number
    assert history.national_keys(ZJ_AGENCY_CODE) == registry.national_keys(ZJ_AGENCY_CODE)
    (only,) = history.national_keys(ZJ_AGENCY_CODE)
    assert (only.key_id, only.retired_at) == (key_id(kept), 0)
    assert (rows(engine, NationalKey), rows(engine, NationalKeyChange)) == (1, 0)


def test_the_trust_snapshot_carries_the_national_keys(
    chain, registry, roles: Roles, deployment, engine, tmp_path: Path
) -> None:
    history_of_three_keys(chain, registry, roles)
    indexer(chain, registry, engine, deployment).sync()
    history = History(engine, max_age_s=0)
    signer = ReceiptSigner.generate()
    body = snapshot_body(engine, chain_id=chain.chain_id, registry=registry.address, region="330000")
    assert body["version"] == 2 and len(body["nationalKeys"]) == 3
    entry = body["nationalKeys"][0]
    assert set(entry) == {
        "keyId", "publicKey", "agency", "validFrom", "addedAt", "retiredAt", "compromisedSince", "changes",
    }  # fmt: skip
    path = save_snapshot(sign_snapshot(body, signer), tmp_path / "snapshot.json.gz")
    snapshot = load_snapshot(path, signer.public_key_pem())
    assert snapshot.trust.national_keys == history.snapshot.trust.national_keys
    assert snapshot.trust.agencies == history.snapshot.trust.agencies
    reader = SnapshotReader(snapshot)
    for code in (ZJ_AGENCY_CODE, GD_AGENCY_CODE):
        assert reader.national_keys(code) == registry.national_keys(code)
        assert all(isinstance(k, NationalKeyInfo) for k in reader.national_keys(code))

    def refused(changed: dict) -> str:  # type: ignore[type-arg]
        with pytest.raises(EcertError) as caught:
            parse_snapshot(json.dumps(sign_snapshot(changed, signer)).encode(), signer.public_key_pem())
        assert caught.value.code == "SNAPSHOT_INVALID"
        return caught.value.message

    other_key = "0x" + new_sm2().hex()
    swapped = {**body, "nationalKeys": [{**entry, "publicKey": other_key}, *body["nationalKeys"][1:]]}
    assert "not keccak256 of its public key" in refused(swapped)
    short = {**body, "nationalKeys": [{**entry, "publicKey": entry["publicKey"][:-2]}]}
    assert "malformed" in refused(short)
    lying = {**body, "nationalKeys": [{**entry, "retiredAt": 0}, *body["nationalKeys"][1:]]}
    assert "disagree" in refused(lying)
    missing = {key: value for key, value in body.items() if key != "nationalKeys"}
    assert "malformed" in refused(missing)  # version 2 must carry the field


def test_a_version_1_snapshot_still_loads_without_national_keys(
    chain, registry, roles: Roles, deployment, engine
) -> None:
    history_of_three_keys(chain, registry, roles)
    indexer(chain, registry, engine, deployment).sync()
    body = snapshot_body(engine, chain_id=chain.chain_id, registry=registry.address, region="330000")
    old = {key: value for key, value in body.items() if key != "nationalKeys"} | {"version": 1}
    signer = ReceiptSigner.generate()
    snapshot = parse_snapshot(json.dumps(sign_snapshot(old, signer)).encode(), signer.public_key_pem())
    reader = SnapshotReader(snapshot)
    assert reader.national_keys(ZJ_AGENCY_CODE) == []
    assert snapshot.trust.national_keys == {}
    assert snapshot.trust.agencies[ZJ_AGENCY_CODE].keys == (roles.agency.address,)
