"""The issuance benchmark's logic (scripts/bench/issue.py only calls it): a throwaway chain,
registry, agency and database; records generated in memory; timed from submit to confirmed."""

from __future__ import annotations

import cProfile
import datetime as dt
import multiprocessing
import os
import platform
import pstats
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_typing import HexStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from issuer.anchoring import AnchoringWorker, WorkerSettings
from issuer.blind_index import BlindIndex
from issuer.db import make_engine, migrate, sessions
from issuer.intake_batches import IntakeBatching
from issuer.models import Batch, Certificate
from issuer.service import IssuerService
from registry.certificate.identifiers import uscc_check_char
from registry.chain.client import ChainClient
from registry.chain.runner import AnvilNode, free_port
from registry.contracts.certificate_registry import CertificateRegistry
from registry.deploy import deploy
from registry.machine_speed import baseline
from registry.national import generate_private_key, public_key

TYPE_CODE = "11100000000013338W001"
AGENCY = "11330100002493028E"
SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨"
JOB = 10_000  # records per submitted job, as an agency's batch upload would be


def _holder_code(i: int) -> str:
    body = f"91330106MA{i % 10**7:07d}"
    return body + uscc_check_char(body)


def make_records(count: int, seed: int = 1) -> list[dict[str, Any]]:
    """Business-licence records of a realistic size (16 leaves each), each holder with its own
    credit code (as the blind index would meet them)."""
    rng = random.Random(seed)
    return [
        {
            "holder": {"name": f"{rng.choice(SURNAMES)}氏{i}号商贸有限公司", "code": _holder_code(i)},
            "number": f"3301{i:011d}",
            "validUntil": "2046-05-31",
            "ext": {
                "legalRepresentative": rng.choice(SURNAMES) + "某",
                "type": "有限责任公司",
                "registeredCapital": f"{rng.randint(1, 9999)}万元人民币",
                "address": f"浙江省杭州市西湖区文三路{rng.randint(1, 999)}号",
                "scope": ["批发和零售业", "软件开发"],
            },
        }
        for i in range(count)
    ]


def _setup(
    tmp: Path, settings: WorkerSettings | None = None
) -> tuple[
    AnvilNode, ChainClient, CertificateRegistry, sessionmaker[Session], IssuerService, AnchoringWorker
]:
    node = AnvilNode(tmp / "chain", free_port())
    node.start()
    client = ChainClient.connect(node.url)
    root, authority, agency = (Account.create() for _ in range(3))
    for account in (root, authority, agency):
        client.fund(account.address, 10**21)
    deployment = deploy(client, root)
    registry = deployment.registry(client)
    registry.add_authority(root, authority.address, 330000, "浙江")
    registry.register_agency(authority, AGENCY, 330100, "杭州市市场监督管理局", agency.address, [TYPE_CODE])
    # The SM2 co-seal, as the runtime makes it; ECERT_BENCH_NATIONAL_SEAL=0 leaves it out, to
    # measure what it costs. Registered on chain, so the verify benchmark's co-seals are VALID.
    national: bytes | None = None
    if os.environ.get("ECERT_BENCH_NATIONAL_SEAL", "1") != "0":
        national = generate_private_key()
        registry.add_national_key(authority, AGENCY, public_key(national))
    engine = make_engine(f"sqlite:///{tmp / 'issuer.sqlite'}")
    migrate(engine)
    factory = sessions(engine)
    worker_settings = settings or WorkerSettings(batch_size=10_000, batch_window_s=0)
    service = IssuerService(
        factory,
        os.urandom(32),
        chain_id=client.chain_id,
        registry_address=registry.address,
        signer_for=lambda _code: agency,
        blind_index=BlindIndex(os.urandom(32)),  # as `IssuerRuntime.service`: intake fills the search index
        national_key_for=lambda _code: national,  # and co-seals each group with the agency's SM2 key
        intake_batching=IntakeBatching(
            worker_settings.batch_size, worker_settings.batch_min_size
        ),  # as the runtime
    )
    service.ensure_agency(AGENCY, "杭州市市场监督管理局", "330100")
    worker = AnchoringWorker(
        factory, registry, lambda _code: agency, worker_settings, national_key_for=lambda _code: national
    )
    return node, client, registry, factory, service, worker


def run_once(count: int, profile: Path | None = None) -> dict[str, Any]:
    records = make_records(count)
    with tempfile.TemporaryDirectory() as folder:
        node, client, _registry, factory, service, worker = _setup(Path(folder))
        try:
            profiler = cProfile.Profile() if profile else None
            service.submit(AGENCY, TYPE_CODE, records[:JOB], type_name="营业执照")  # warm the intake pool
            worker.run_until_idle(timeout_s=600, poll_s=0.01)
            records = make_records(count, seed=2)
            stop = threading.Event()
            anchoring_cpu: list[float] = []

            def anchor() -> None:
                worker.run_forever(stop, poll_s=0.25)
                anchoring_cpu.append(time.thread_time())

            anchoring = threading.Thread(target=anchor)
            workers_before, process_before = _workers_cpu_s(), time.process_time()
            started, storing_before = time.perf_counter(), time.thread_time()
            if profiler:
                profiler.enable()
            anchoring.start()  # as in the service: the worker anchors while later jobs are stored
            for start in range(0, count, JOB):
                service.submit(AGENCY, TYPE_CODE, records[start : start + JOB], type_name="营业执照")
            stored, storing_cpu = time.perf_counter(), time.thread_time() - storing_before
            while worker.outstanding():
                time.sleep(0.01)
            done = time.perf_counter()
            stop.set()
            anchoring.join()
            cpu = {  # CPU seconds by stage: unlike wall time, barely moved by other load on the machine
                "storing_thread": storing_cpu,
                "anchoring_thread": anchoring_cpu[0],
                "main_process": time.process_time() - process_before,
                "intake_workers": sum(
                    spent - workers_before.get(pid, 0.0) for pid, spent in _workers_cpu_s().items()
                ),
            }
            if profiler:
                profiler.disable()
            service.close()
            if profiler and profile:
                pstats.Stats(profiler).sort_stats("cumulative").dump_stats(profile)
            with factory() as session:
                batches = session.execute(
                    select(func.count(), func.sum(Batch.count)).select_from(Batch)
                ).one()
            gas = sum(
                client.w3.eth.get_transaction_receipt(HexStr(tx))["gasUsed"]
                for (tx,) in factory().execute(select(Batch.tx_hash).order_by(Batch.id).offset(1))
                if tx is not None  # every batch is anchored by now
            )
        finally:
            node.stop()
    return {
        "records": count,
        "seconds": round(done - started, 2),
        "certs_per_s": round(count / (done - started)),
        "store_seconds": round(stored - started, 2),
        "anchor_seconds": round(done - stored, 2),
        "batches": batches[0] - 1,
        "anchored": batches[1] - JOB,
        "gas_per_cert": round(gas / count, 1),
        "cpu_seconds": {stage: round(spent, 2) for stage, spent in cpu.items()},
    }


def _workers_cpu_s() -> dict[int, float]:
    """CPU seconds each live child process (the intake's workers) has used, from Linux's /proc;
    nothing elsewhere."""
    spent: dict[int, float] = {}
    for child in multiprocessing.active_children():
        if child.pid is None:
            continue
        try:
            stat = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        spent[child.pid] = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return spent


def run_issue_bench(sizes: list[int], *, profile: bool = False) -> dict[str, Any]:
    runs = [
        run_once(n, Path("bench-results/issue-100k.prof") if profile and n == 100_000 else None)
        for n in sizes
    ]
    main = next((r for r in runs if r["records"] == 100_000), runs[-1])
    return {
        "certs_per_s": main["certs_per_s"],
        "gas_per_cert": main["gas_per_cert"],
        "runs": runs,
        "goals": {"certs_per_s_min": 5000, "gas_per_cert_max": 60},
        "machine": {"cores": os.cpu_count(), "arch": platform.machine(), "speed": baseline()},
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def run_trickle(count: int, rate_per_s: float, settings: WorkerSettings) -> dict[str, Any]:
    """Single-certificate requests at `rate_per_s` while the worker anchors as the service does:
    how many anchoring transactions `count` certificates took, and how long each one waited."""
    records = make_records(count, seed=3)
    with tempfile.TemporaryDirectory() as folder:
        node, _client, _registry, factory, service, worker = _setup(Path(folder), settings)
        try:
            stop = threading.Event()
            anchoring = threading.Thread(target=worker.run_forever, args=(stop,), kwargs={"poll_s": 0.1})
            anchoring.start()
            started = time.perf_counter()
            for i, record in enumerate(records):
                time.sleep(max(0.0, started + i / rate_per_s - time.perf_counter()))
                service.submit(AGENCY, TYPE_CODE, [record], type_name="营业执照")
            while worker.outstanding():
                time.sleep(0.05)
            stop.set()
            anchoring.join()
            service.close()
            with factory() as session:
                sizes = list(session.scalars(select(Batch.count).order_by(Batch.id)))
                waits = sorted(  # submitted → confirmed (SQLite keeps the submit time to the second)
                    (_utc(confirmed) - _utc(created)).total_seconds()
                    for created, confirmed in session.execute(
                        select(Certificate.created_at, Batch.confirmed_at)
                        .join(Batch, Certificate.batch_id == Batch.id)
                        .where(Batch.confirmed_at.is_not(None))  # all of them, once none is outstanding
                    )
                )
        finally:
            node.stop()
    batches = len(sizes)
    return {
        "certificates": count,
        "rate_per_s": rate_per_s,
        "transactions": batches,
        "transactions_per_1000": round(batches * 1000 / count, 1),
        "batch_sizes": {"min": min(sizes), "median": sorted(sizes)[len(sizes) // 2], "max": max(sizes)},
        "wait_s": {"p50": round(waits[len(waits) // 2], 1), "max": round(waits[-1], 1)},
        "settings": {
            "batch_window_s": settings.batch_window_s,
            "batch_max_wait_s": settings.batch_max_wait_s,
            "batch_min_size": settings.batch_min_size,
        },
    }


def run_trickle_bench(count: int, rate_per_s: float) -> dict[str, Any]:
    """Transactions per `count` trickled certificates, cut every window (as before adaptive
    batching: `batch_max_wait_s=0`) and with the service's defaults."""
    before = run_trickle(count, rate_per_s, WorkerSettings(batch_max_wait_s=0))
    after = run_trickle(count, rate_per_s, WorkerSettings())
    return {
        "before": before,
        "after": after,
        "transactions_per_1000": {
            "before": before["transactions_per_1000"],
            "after": after["transactions_per_1000"],
        },
        "machine": {"cores": os.cpu_count(), "arch": platform.machine(), "speed": baseline()},
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _utc(moment: dt.datetime | None) -> dt.datetime:
    assert moment is not None  # selected where not null
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
