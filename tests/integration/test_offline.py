"""Offline verification from a signed trust snapshot.

Unit level, on the session anvil: `SnapshotReader.facts` answers what `History.facts` (and the
chain's `inspect`) answers, for right and wrong proofs, signers, statuses, a compromised key and
a suspended agency; the status bits survive the file; a changed, re-signed or malformed file is
refused with `SNAPSHOT_INVALID`.

CLI level, in a temporary home with its own chain: issue, revoke one, snapshot, issue one more,
stop the chain, then `ecert verify --offline … --trust-key …` on `EC1:` codes and QR images.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from anchored import anchor, shown
from conftest import GD_AGENCY_CODE, ZJ_AGENCY_CODE, Roles, fund
from eth_account import Account
from service_process import ECERT, ecert_home_env
from typer.testing import CliRunner

from registry.certificate.links import verify_link
from registry.certificate.merkle import batch_tree
from registry.certificate.presentation import Presentation
from registry.contracts.certificate_registry import Status
from registry.errors import ChainError, EcertError
from registry.indexer import NOT_ANCHORED, History, Indexer, make_engine
from registry.indexer.records import batch_record
from verifier.cli import verify
from verifier.offline import SnapshotReader, describe_age
from verifier.receipts import ReceiptSigner
from verifier.snapshot import (
    _batch_from,
    _batch_json,
    load_snapshot,
    parse_snapshot,
    save_snapshot,
    sign_snapshot,
    snapshot_body,
)

pytestmark = pytest.mark.chain

AGENCY = "11330100002493028E"
TYPE = "11100000000013338W001"


# ─── unit level: the reader against the index ────────────────────────────────────────────


def test_snapshot_reader_facts_equal_history_facts(
    chain, registry, roles: Roles, deployment, tmp_path: Path
) -> None:
    first = anchor(registry, roles.agency, 5, "first")
    registry.set_status(roles.agency, first.root, 1, Status.SUSPENDED, 2)
    registry.set_status(roles.authority, first.root, 2, Status.REVOKED, 7)
    registry.set_status_bulk(roles.agency, first.root, 0, 0b11000, Status.SUSPENDED, 2)
    registry.set_status(roles.agency, first.root, 4, Status.ACTIVE, 1)
    revoked = anchor(registry, roles.agency, 3, "revoked")
    registry.revoke_batch(roles.agency, revoked.root, 3)
    second_key = Account.create()
    fund(chain, second_key)
    registry.add_key(roles.agency, ZJ_AGENCY_CODE, second_key.address)
    by_second = anchor(registry, second_key, 2, "by second key")
    registry.compromise_key(
        roles.authority, second_key.address, chain.w3.eth.get_block("latest")["timestamp"]
    )
    guangdong = anchor(registry, roles.other_agency, 2, "guangdong")
    registry.suspend_agency(roles.other_authority, GD_AGENCY_CODE)

    engine = make_engine(f"sqlite:///{tmp_path / 'index.db'}")
    Indexer(chain, registry, engine, confirmations=0, start_block=deployment.block_number).sync()
    history = History(engine)
    signer = ReceiptSigner.generate()
    body = snapshot_body(engine, chain_id=chain.chain_id, registry=registry.address, region="330000")
    path = save_snapshot(sign_snapshot(body, signer), tmp_path / "snapshot.json.gz")
    snapshot = load_snapshot(path, signer.public_key_pem())
    reader = SnapshotReader(snapshot)
    assert (reader.chain_id, reader.registry, snapshot.block_number) == (
        chain.chain_id,
        registry.address,
        history.indexed_block,
    )
    assert (
        snapshot.trust.agencies == history.snapshot.trust.agencies
        and snapshot.trust.keys == history.snapshot.trust.keys
    )

    signers = [roles.agency.address, second_key.address, roles.other_agency.address, roles.stranger.address]
    compared = 0
    for batch in (first, revoked, by_second, guangdong):
        count = len(batch.digests)
        cases = [(i, batch.digests[i], batch.tree.proof(i)) for i in range(count)] + [
            (0, batch.digests[1], batch.tree.proof(0)),  # a neighbour's digest
            (1, batch.digests[1], batch.tree.proof(0)),  # a neighbour's proof
            (count, batch.digests[0], batch.tree.proof(0)),  # outside the batch
        ]
        for index, digest, proof in cases:
            for who in signers:
                facts = reader.facts(shown(batch.root, index, digest, proof), who)
                assert (facts.source, facts.block_number) == ("snapshot", snapshot.block_number)
                assert facts.inspection == history.facts(batch.root, index, digest, proof, who)
                assert facts.inspection == registry.inspect(batch.root, index, digest, proof, who)
                compared += 1
    assert compared == 4 * 4 * 3 + 4 * (5 + 3 + 2 + 2)
    statuses = [
        reader.facts(
            shown(first.root, i, first.digests[i], first.tree.proof(i)), signers[0]
        ).inspection.status
        for i in range(5)
    ]
    assert statuses == [Status.ACTIVE, Status.SUSPENDED, Status.REVOKED, Status.SUSPENDED, Status.ACTIVE]
    assert reader.facts(
        shown(guangdong.root, 0, guangdong.digests[0], guangdong.tree.proof(0)), signers[2]
    ).inspection.agency_suspended
    assert not reader.facts(
        shown(by_second.root, 0, by_second.digests[0], by_second.tree.proof(0)), signers[1]
    ).inspection.signer_valid
    unknown = batch_tree([b"\x01" * 32])
    assert (
        reader.facts(shown(unknown.root, 0, b"\x01" * 32, unknown.proof(0)), signers[0]).inspection
        == NOT_ANCHORED
    )
    with pytest.raises(ChainError) as refused:
        reader.facts(shown(first.root, 0, first.digests[0], first.tree.proof(0)), signers[0], at=1)
    assert refused.value.code == "SNAPSHOT_NO_HISTORY"
    engine.dispose()


def test_status_bits_survive_the_file_and_bad_files_are_refused(tmp_path: Path) -> None:
    """No chain: random status events folded into a batch, written, signed, read back."""
    rng = random.Random(7)
    count = 700
    events = []
    for n in range(60):
        word = rng.randrange((count + 255) // 256)
        mask = rng.getrandbits(256) & rng.getrandbits(256) & rng.getrandbits(256)
        events.append((10 + n, 0, (1000 + n, word, mask, Status(rng.choice([0, 1, 1, 2])), 2)))
    root = hashlib.sha256(b"root").digest()
    fields = {"root": root, "agency_code": AGENCY, "agency_index": 1, "key": "0x" + "11" * 20, "type_code": TYPE, "count": count,
              "anchored_at": 900, "block_number": 9, "log_index": 0, "tx_hash": b""}  # fmt: skip
    record = batch_record(fields, events)
    whole = batch_record(
        fields | {"root": hashlib.sha256(b"whole").digest()}, [(11, 0, (1001, -1, 0, Status.REVOKED, 3))]
    )
    for original in (record, whole):
        entry = json.loads(json.dumps(_batch_json(original)))
        back = _batch_from(entry)
        assert [back.status_now(i) for i in range(count)] == [original.status_now(i) for i in range(count)]
    untouched = _batch_json(batch_record(fields, []))
    assert not {"suspended", "revoked", "revokedAll"} & set(
        untouched
    )  # an untouched batch carries no status at all
    assert set(_batch_json(record)["revoked"]) <= {
        "0",
        "1",
        "2",
    }  # only the words with a bit set, at most ⌈700/256⌉

    signer, other = ReceiptSigner.generate(), ReceiptSigner.generate()
    body = {
        "format": "ecert-trust-snapshot", "version": 1, "chainId": 31337, "registry": "0x" + "22" * 20,
        "block": {"number": 12, "hash": None, "time": 1000}, "createdAt": "2026-01-01T00:00:00.000Z", "node": {"region": "330000"},
        "authorities": [], "agencies": [], "keys": [], "batches": [_batch_json(record)],
    }  # fmt: skip
    good = sign_snapshot(body, signer)
    plain = save_snapshot(good, tmp_path / "snapshot.json")  # uncompressed works too
    assert load_snapshot(plain, signer.public_key_pem()).batch(root) is not None

    def refused(data: bytes, key: ReceiptSigner = signer) -> str:
        with pytest.raises(EcertError) as caught:
            parse_snapshot(data, key.public_key_pem())
        assert caught.value.code == "SNAPSHOT_INVALID"
        return caught.value.message

    text = json.dumps(good)
    assert "signature does not verify" in refused(text.replace(root.hex()[:8], "ffffffff").encode())
    assert "not by the trusted key" in refused(text.encode(), other)
    assert "not by the trusted key" in refused(json.dumps(sign_snapshot(body, other)).encode())
    bad_root = {**body, "batches": [{**_batch_json(record), "root": "0x1234"}]}
    assert "malformed" in refused(json.dumps(sign_snapshot(bad_root, signer)).encode())
    refused(b"\x1f\x8b garbage")
    assert "nested deeper" in refused(
        gzip.compress(b"[" * 200_000)
    )  # refused before json.loads could overflow the C stack
    refused(b"[]")
    with pytest.raises(EcertError) as bad_key:
        parse_snapshot(text.encode(), "not a key")
    assert bad_key.value.code == "TRUST_KEY_INVALID"


def test_age_reads_well() -> None:
    import datetime as dt

    assert [describe_age(dt.timedelta(seconds=s)) for s in (5, 600, 3 * 3600 + 12 * 60, 2 * 86400 + 4 * 3600 + 59)] == [
        "< 1 min", "10 min", "3 h 12 min", "2 d 4 h",
    ]  # fmt: skip


# ─── CLI level: issue, snapshot, stop the chain, verify offline ──────────────────────────


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return ecert_home_env(tmp_path_factory.mktemp("ecert-offline"))


def ecert(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ECERT, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def must(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = ecert(env, *args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


@dataclass
class Offline:
    home: Path
    valid: Path  # package of a certificate anchored before the snapshot
    revoked: Path  # revoked before the snapshot
    later: Path  # issued after the snapshot
    snapshot: Path
    key: Path  # the node's public key, as `ecert trust key` printed it
    block: int
    region_snapshot: Path  # `--covering 330000`, taken with the whole one
    delta: Path  # `--since region_snapshot`, taken after `later` was issued


def records(path: Path, *names: str) -> Path:
    lines = [f"{name},11010519491231002X,,杭州市西湖区" for name in names]
    path.write_text(
        "holder.name,holder.code,validUntil,ext.address\n" + "\n".join(lines) + "\n", encoding="utf-8"
    )
    return path


@pytest.fixture(scope="module")
def offline(env: dict[str, str]):
    home = Path(env["ECERT_HOME"]).parent
    must(env, "chain", "up")
    try:
        must(env, "deploy")
        must(env, "authority", "add", "--region", "330000", "--name", "浙江省数据局")
        must(
            env,
            "agency",
            "add",
            "--region",
            "330100",
            "--code",
            AGENCY,
            "--name",
            "杭州市市场监督管理局",
            "--types",
            TYPE,
        )
        must(
            env,
            "issue",
            "--agency",
            AGENCY,
            "--type",
            TYPE,
            "--input",
            str(records(home / "a.csv", "张三", "李四")),
            "--out",
            str(home / "a"),
            "--qr",
        )
        valid, revoked = sorted((home / "a").glob("*.json"))
        exported = subprocess.Popen(
            [*ECERT, "trust", "key"], env=env, stdout=subprocess.PIPE, text=True
        )  # meanwhile
        must(env, "status", "set", revoked.stem, "--status", "revoked", "--reason", "3")
        pem, _ = exported.communicate(timeout=120)
        assert exported.returncode == 0 and pem.startswith("-----BEGIN PUBLIC KEY-----")
        key = home / "node-key.pem"
        key.write_text(pem)
        made = must(env, "trust", "snapshot").stdout
        snapshot = Path(env["ECERT_HOME"]) / "verifier-330000" / "trust-snapshot.json.gz"
        assert str(snapshot) in made.replace("\n", "") and "block" in made
        region_snapshot = home / "zj.json.gz"
        made = must(env, "trust", "snapshot", "--covering", "330000", "--out", str(region_snapshot)).stdout
        assert "of regions 330000" in made
        must(
            env,
            "issue",
            "--agency",
            AGENCY,
            "--type",
            TYPE,
            "--input",
            str(records(home / "b.csv", "王五")),
            "--out",
            str(home / "b"),
            "--qr",
        )
        (later,) = (home / "b").glob("*.json")
        delta = home / "delta.json.gz"
        made = must(env, "trust", "snapshot", "--since", str(region_snapshot), "--out", str(delta)).stdout
        assert "delta since block" in made and "1 batches" in made.replace("\n", "")
    finally:
        must(env, "chain", "down")
    block = json.loads(gzip.decompress(snapshot.read_bytes()))["snapshot"]["block"]["number"]
    return Offline(home, valid, revoked, later, snapshot, key, block, region_snapshot, delta)


def verify_offline(
    env: dict[str, str], offline: Offline, source: str, *extra: str, snapshot: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return ecert(
        env,
        "verify",
        *extra,
        "--offline",
        str(snapshot or offline.snapshot),
        "--trust-key",
        str(offline.key),
        source,
    )


@pytest.fixture(scope="module")
def verify_here(offline: Offline):  # type: ignore[no-untyped-def]
    """`ecert verify` in this process (the same command, without a Python start-up per case)."""
    app = typer.Typer()
    app.command()(verify)
    runner = CliRunner()

    def run(source: str, *extra: str, snapshot: Path | None = None) -> subprocess.CompletedProcess[str]:
        args = [
            *extra,
            "--offline",
            str(snapshot or offline.snapshot),
            "--trust-key",
            str(offline.key),
            source,
        ]
        done = runner.invoke(app, args)
        assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
        return subprocess.CompletedProcess(args, done.exit_code, done.stdout, "")

    return run


def ec1(package: Path) -> str:
    return Presentation.from_json(json.loads(package.read_text(encoding="utf-8"))).to_ec1()


def test_an_ec1_code_verifies_offline_with_the_chain_stopped(env: dict[str, str], offline: Offline) -> None:
    done = verify_offline(
        env, offline, ec1(offline.valid)
    )  # a real `ecert` process: no chain, nothing to ask
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"offline: trust snapshot of block {offline.block}, " in done.stdout and " old" in done.stdout
    assert "verdict: VALID" in done.stdout


def test_a_verification_link_verifies_offline_from_its_fragment(verify_here, offline: Offline) -> None:
    """`ecert verify '<node>/v#EC1:…'` reads the certificate from the link: no node is asked."""
    link = verify_link("https://verify.unreachable.example", ec1(offline.valid))
    done = verify_here(link, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (json.loads(done.stdout)["verdict"], json.loads(done.stdout)["mode"]) == ("VALID", "offline")


def test_a_qr_image_verifies_offline_and_the_json_says_so(verify_here, offline: Offline) -> None:
    done = verify_here(str(offline.valid.with_suffix(".png")), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert (report["verdict"], report["mode"], report["snapshotBlock"]) == ("VALID", "offline", offline.block)
    assert 0 <= report["snapshotAgeSeconds"] < 600
    assert {c["evidence"]["source"] for c in report["checks"] if c["kind"] in ("anchor", "status")} == {
        "snapshot"
    }
    [fresh] = [c for c in report["checks"] if c["kind"] == "freshness"]
    assert (
        fresh["code"] == "FACTS_CURRENT" and "from the trust snapshot" in fresh["message"]
    )  # not "read now"


def test_revoked_before_the_snapshot_is_invalid(verify_here, offline: Offline) -> None:
    done = verify_here(str(offline.revoked.with_suffix(".png")), "--json")
    assert (done.returncode, json.loads(done.stdout)["reason"]) == (1, "CERT_REVOKED")


def test_issued_after_the_snapshot_is_not_anchored_and_says_why(verify_here, offline: Offline) -> None:
    done = verify_here(ec1(offline.later), "--json")
    report = json.loads(done.stdout)
    assert (done.returncode, report["reason"]) == (1, "NOT_ANCHORED")
    anchor = next(c for c in report["checks"] if c["kind"] == "anchor")
    assert "may be older than the certificate" in anchor["message"]


def test_a_tampered_snapshot_cannot_verify(verify_here, offline: Offline, tmp_path: Path) -> None:
    text = gzip.decompress(offline.snapshot.read_bytes()).decode("utf-8")
    root = json.loads(text)["snapshot"]["batches"][0]["root"]
    changed = root[:-1] + ("0" if root[-1] != "0" else "1")  # one byte of a root
    tampered = tmp_path / "tampered.json.gz"
    tampered.write_bytes(gzip.compress(text.replace(root, changed).encode("utf-8")))
    done = verify_here(ec1(offline.valid), snapshot=tampered)
    assert done.returncode == 2 and "SNAPSHOT_INVALID" in done.stdout, done.stdout + done.stderr
    assert "VALID" not in done.stdout.replace("SNAPSHOT_INVALID", "")


def test_a_snapshot_signed_by_another_key_cannot_verify(
    verify_here, offline: Offline, tmp_path: Path
) -> None:
    body = json.loads(gzip.decompress(offline.snapshot.read_bytes()))["snapshot"]
    body["node"].pop("keyId")
    forged = save_snapshot(sign_snapshot(body, ReceiptSigner.generate()), tmp_path / "forged.json.gz")
    done = verify_here(str(offline.valid), "--json", snapshot=forged)
    assert done.returncode == 2
    assert (json.loads(done.stdout)["verdict"], json.loads(done.stdout)["reason"]) == (
        "ERROR",
        "SNAPSHOT_INVALID",
    )


def test_offline_needs_a_pinned_key(verify_here, offline: Offline) -> None:
    app = typer.Typer()
    app.command()(verify)
    done = CliRunner().invoke(app, ["--json", "--offline", str(offline.snapshot), str(offline.valid)])
    assert (done.exit_code, json.loads(done.stdout)["reason"]) == (2, "TRUST_KEY_MISSING")


def test_a_region_snapshot_and_its_delta_verify_what_came_later(verify_here, offline: Offline) -> None:
    """A counter holding its region's snapshot applies the day's delta: the certificate issued
    after the snapshot verifies; the same delta twice, or a delta without its base, is refused."""
    before = verify_here(ec1(offline.later), "--json", snapshot=offline.region_snapshot)
    assert before.returncode == 1 and json.loads(before.stdout)["reason"] == "NOT_ANCHORED"
    after = verify_here(
        ec1(offline.later), "--json", "--delta", str(offline.delta), snapshot=offline.region_snapshot
    )
    assert after.returncode == 0, after.stdout
    report = json.loads(after.stdout)
    assert report["verdict"] == "VALID" and report["snapshotBlock"] > offline.block
    revoked = verify_here(
        ec1(offline.revoked), "--json", "--delta", str(offline.delta), snapshot=offline.region_snapshot
    )
    assert (revoked.returncode, json.loads(revoked.stdout)["reason"]) == (1, "CERT_REVOKED")
    twice = verify_here(
        ec1(offline.later), "--json", "--delta", str(offline.delta), "--delta", str(offline.delta),
        snapshot=offline.region_snapshot,
    )  # fmt: skip
    assert (twice.returncode, json.loads(twice.stdout)["reason"]) == (2, "SNAPSHOT_DELTA_UNCHAINED")
    elsewhere = verify_here(
        ec1(offline.later), "--json", "--delta", str(offline.delta)
    )  # on the whole snapshot
    assert (elsewhere.returncode, json.loads(elsewhere.stdout)["reason"]) == (2, "SNAPSHOT_DELTA_UNCHAINED")
    assert offline.delta.stat().st_size < offline.region_snapshot.stat().st_size
