"""Lives beside scripts/bench/verify.py, not in a room: it drives both the issuer and a verifier node.

The verification benchmark's logic (scripts/bench/verify.py only calls it).

A throwaway anvil chain and registry with ≥100,000 certificates issued in process (the issuer
benchmark's setup), holder packages for a few hundred of them, then `ecert serve verifier
--workers 2` as operators run it, with a bank's key and no practical rate limit. Once its index
has caught up and it is warm, `wrk` posts a rotating set of distinct packages at 32 connections;
its Requests/sec and latency distribution are the result.

The node reaches anvil through a counting JSON-RPC proxy, so the chain calls made while `wrk`
runs are counted (the goal: none per verification while the index is fresh; the head tracker and
the indexer poll in the background whatever the load). `cold_ms` is one verification that needs
an `eth_call`: a second node with `ECERT_VERIFIER_INDEX_MAX_LAG_BLOCKS=-1` always falls back to
the chain; the median of single sequential requests.

Optionally `py-spy` samples one HTTP worker during a second `wrk` run: where the time goes.
"""

from __future__ import annotations

import collections
import datetime as dt
import http.client
import json
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from issuer.benchmark import AGENCY, JOB, TYPE_CODE, _setup, make_records
from registry.chain.client import ChainClient
from registry.chain.runner import free_port
from registry.contracts.certificate_registry import CertificateRegistry
from registry.deploy import Deployment
from registry.machine_speed import baseline

ECERT = [sys.executable, "-c", "from registry.cli import main; main()"]
REGION = "330000"
PURPOSE = "贷款审批"
LUA = r"""
-- Cycle through pre-built request bodies (one JSON per line of args[1]); each thread starts elsewhere.
local bodies, n, i = {}, 0, 0
local headers = {}
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("offset", threads * 101)
end

function init(args)
  for line in io.lines(args[1]) do
    n = n + 1
    bodies[n] = line
  end
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer " .. args[2]
  i = (offset or 0) % n
end

function request()
  i = i % n + 1
  return wrk.format("POST", "/v1/verifications", headers, bodies[i])
end
"""


# ─── a JSON-RPC proxy that counts what the node asks the chain ───────────────────────────


class RpcProxy:
    """Forwards JSON-RPC POSTs to `upstream` and counts them by method (batches item by item)."""

    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        counts: collections.Counter[str] = collections.Counter()
        lock = threading.Lock()
        local = threading.local()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = (
                True  # headers and body go out as two writes: no 40 ms delayed-ACK stall
            )

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    call = json.loads(body)
                    methods = (
                        [c.get("method", "?") for c in call]
                        if isinstance(call, list)
                        else [call.get("method", "?")]
                    )
                except (ValueError, AttributeError):
                    methods = ["?"]
                with lock:
                    counts.update(methods)
                    counts["(requests)"] += 1
                try:
                    status, answer = self._forward(body)
                except OSError:
                    self.send_error(502)
                    return
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def _forward(self, body: bytes) -> tuple[int, bytes]:
                for attempt in (0, 1):  # a kept-alive upstream connection may have been closed
                    connection = getattr(local, "connection", None)
                    if connection is None:
                        connection = local.connection = http.client.HTTPConnection(
                            target.hostname, target.port, timeout=30
                        )
                    try:
                        connection.request(
                            "POST", target.path or "/", body, {"Content-Type": "application/json"}
                        )
                        response = connection.getresponse()
                        return response.status, response.read()
                    except (OSError, http.client.HTTPException):
                        connection.close()
                        local.connection = None
                        if attempt:
                            raise
                raise OSError("unreachable")

            def log_message(self, *_: Any) -> None:
                pass

        self.counts = counts
        self._lock = lock
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="rpc-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def snapshot(self) -> collections.Counter[str]:
        with self._lock:
            return collections.Counter(self.counts)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# ─── a verifier node as operators run it ─────────────────────────────────────────────────


class NodeProcess:
    """`ecert serve verifier --region 330000 --workers N` in a subprocess."""

    def __init__(self, env: dict[str, str], log: Path, *, workers: int) -> None:
        self.env, self.log, self.workers = env, log, workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 120.0) -> NodeProcess:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*ECERT, "serve", "verifier", "--region", REGION, "--port", str(self.port), "--workers", str(self.workers)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the verifier exited {self.process.returncode}: see {self.log}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the verifier did not answer within {timeout_s} s: see {self.log}")

    @property
    def pid(self) -> int:
        """The node process (uvicorn's supervisor, which also indexes and writes the access log)."""
        assert self.process is not None
        return self.process.pid

    def workers_pids(self) -> list[int]:
        """The uvicorn worker processes (children of the supervisor that run Python)."""
        assert self.process is not None
        children: list[int] = []
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            text = (task / "children").read_text().split()
            children += [int(pid) for pid in text]
        return [
            pid for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ] or children

    def wait_indexed(self, block: int, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while httpx.get(f"{self.url}/healthz", timeout=5).json()["indexedBlock"] < block:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the index did not reach block {block} within {timeout_s} s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ─── the steps ───────────────────────────────────────────────────────────────────────────


def _issue(service: Any, worker: Any, count: int) -> tuple[list[str], float]:
    """`count` business licences, submitted in jobs of 10,000 and anchored; job ids and seconds."""
    started = time.perf_counter()
    jobs = [
        service.submit(AGENCY, TYPE_CODE, chunk, type_name="营业执照").id
        for chunk in _chunks(make_records(count, seed=3), JOB)
    ]
    worker.run_until_idle(timeout_s=1800, poll_s=0.01)
    return jobs, time.perf_counter() - started


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    return (items[i : i + size] for i in range(0, len(items), size))


def _request_bodies(service: Any, jobs: list[str], distinct: int) -> list[str]:
    """`distinct` verification requests, spread over every job (so over every anchored batch)."""
    per_job = -(-distinct // len(jobs))
    bodies: list[str] = []
    for job in jobs:
        for n, (_identifier, presentation) in enumerate(service.job_packages(AGENCY, job)):
            if n == per_job:
                break
            bodies.append(
                json.dumps(
                    {"package": presentation.to_json(), "purpose": PURPOSE},
                    ensure_ascii=False,
                    separators=(",", ":"),
                )
            )
    return bodies[:distinct]


def _deployment(client: ChainClient, registry: CertificateRegistry) -> Deployment:
    """The issuer benchmark's deployment, found back on its young chain (the contract-creating tx)."""
    for number in range(1, client.block_number() + 1):
        for tx in client.w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["to"] is None:
                return Deployment(client.chain_id, registry.address, registry.address, tx["from"], number)
    raise RuntimeError("no deployment transaction found")


def _register_bank(database_url: str) -> str:
    from verifier.db import make_engine, migrate, sessions
    from verifier.orgs import Organisations

    engine = make_engine(database_url)
    try:
        migrate(engine)
        return Organisations(sessions(engine), rate_per_min=1).add("基准测试银行", "330100", "bank")[1]
    finally:
        engine.dispose()


def _node_env(home: Path, rpc_url: str, **verifier: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECERT_")}
    env.update(
        ECERT_HOME=str(home), ECERT_RPC_URL=rpc_url, ECERT_KEYSTORE_PASSWORD=secrets.token_hex(12), ECERT_VERIFIER_REGION=REGION,
        ECERT_VERIFIER_RATE_LIMIT_PER_MIN=str(10**12),
    )  # fmt: skip
    env.update({f"ECERT_VERIFIER_{k.upper()}": v for k, v in verifier.items()})
    return env


def _check_all_valid(url: str, key: str, bodies: list[str]) -> None:
    with httpx.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=30,
    ) as client:
        for body in bodies:
            answer = client.post("/v1/verifications", content=body.encode())
            if (
                answer.status_code != 200
                or answer.json()["verdict"] != "VALID"
                or answer.json()["source"] != "index"
            ):
                raise RuntimeError(
                    f"not a VALID answer from the index: {answer.status_code} {answer.text[:500]}"
                )


def _sequential_ms(url: str, key: str, bodies: list[str]) -> tuple[list[float], list[dict[str, Any]]]:
    """Latency of single requests, one after the other (no concurrency), and their answers."""
    times, answers = [], []
    with httpx.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=30,
    ) as client:
        for body in bodies:
            started = time.perf_counter()
            answer = client.post("/v1/verifications", content=body.encode())
            times.append((time.perf_counter() - started) * 1000)
            answers.append(answer.json())
    return times, answers


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/sec, the latency distribution (ms), request and error counts from `wrk --latency`."""
    percentiles = {
        int(p): _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", output, re.MULTILINE)
    }
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+),", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "latency_ms": {f"p{p}": round(v, 2) for p, v in sorted(percentiles.items())},
        "requests": int(total.group(1)) if total else None,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
    }


def _wrk(
    url: str, script: Path, bodies: Path, key: str, *, threads: int, connections: int, duration_s: int
) -> tuple[dict[str, Any], str]:
    done = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--timeout", "10s", "--latency", "-s", str(script), url,
         "--", str(bodies), key],
        capture_output=True, text=True, timeout=duration_s + 60, check=True,
    )  # fmt: skip
    return parse_wrk(done.stdout), done.stdout


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _short(frame: str) -> str:
    """`f (/…/site-packages/pkg/mod.py:12)` → `f (pkg/mod.py)`: one entry per function."""
    return re.sub(
        r"\((?:[^()]*/site-packages/|[^()]*/python3\.\d+/|/[^()]*?/(?=(?:registry|issuer|verifier|wallet)/))?([^():]*)(?::\d+)?\)",
        r"(\1)",
        frame,
    )


def _profile(pid: int, seconds: int, out: Path) -> dict[str, Any]:
    """py-spy samples of one worker while it holds the GIL (collapsed stacks to `out`): the top
    functions by own and total time, as shares of the samples."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    subprocess.run([spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "250", "--format", "raw", "--gil",
                    "--output", str(out), "--nonblocking"], capture_output=True, timeout=seconds + 60, check=True)  # fmt: skip
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = [_short(f) for f in stack.split(";")]
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n

    def share(c: collections.Counter[str]) -> list[str]:
        return [f"{100 * n / samples:5.1f}% {f}" for f, n in c.most_common(30)]

    return {
        "samples": samples,
        "gil_held_pct": round(100 * samples / (seconds * 250), 1),
        "own": share(own),
        "total": share(total),
    }


def run_verify_bench(
    *,
    certificates: int = 100_000,
    distinct: int = 400,
    duration_s: int = 20,
    connections: int = 32,
    threads: int = 2,
    workers: int = 2,
    cold_samples: int = 20,
    profile_s: int = 0,
    results: Path = Path("bench-results"),
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        chain, client, registry, _factory, service, worker = _setup(tmp)
        proxy = RpcProxy(chain.url)
        nodes: list[NodeProcess] = []
        try:
            jobs, issue_s = _issue(service, worker, certificates)
            bodies = _request_bodies(service, jobs, distinct)
            service.close()
            home = tmp / "home"
            _deployment(client, registry).save(home / "deployment.json")
            bodies_file, script = tmp / "bodies.jsonl", tmp / "post.lua"
            bodies_file.write_text("\n".join(bodies) + "\n", encoding="utf-8")
            script.write_text(LUA)

            # the node under test: index first, through the counting proxy
            (home / f"verifier-{REGION}").mkdir(parents=True)
            key = _register_bank(f"sqlite:///{home / f'verifier-{REGION}' / 'verifier.sqlite'}")
            node = NodeProcess(_node_env(home, proxy.url), tmp / "verifier.log", workers=workers)
            nodes.append(node)
            node.start()
            head = client.block_number()
            started = time.perf_counter()
            node.wait_indexed(head)
            index_s = time.perf_counter() - started
            _check_all_valid(
                node.url, key, bodies
            )  # every body is VALID from the index (and warms both workers)
            _wrk(
                node.url, script, bodies_file, key, threads=threads, connections=connections, duration_s=3
            )  # warm-up
            warm_ms, _ = _sequential_ms(node.url, key, bodies[:cold_samples])

            idle_before = proxy.snapshot()
            time.sleep(5)
            idle = proxy.snapshot() - idle_before
            before, pids = proxy.snapshot(), node.workers_pids()
            cpu_before, node_cpu_before = sum(map(_cpu_s, pids)), _cpu_s(node.pid)
            run, output = _wrk(
                node.url,
                script,
                bodies_file,
                key,
                threads=threads,
                connections=connections,
                duration_s=duration_s,
            )
            worker_cpu_s = sum(map(_cpu_s, pids)) - cpu_before
            node_cpu_s = _cpu_s(node.pid) - node_cpu_before  # the node process: indexer, access-log writer
            during = proxy.snapshot() - before
            profile = None
            if profile_s:
                worker_pid = node.workers_pids()[0]
                spy = threading.Thread(
                    target=lambda: _wrk(
                        node.url,
                        script,
                        bodies_file,
                        key,
                        threads=threads,
                        connections=connections,
                        duration_s=profile_s + 4,
                    )
                )
                spy.start()
                time.sleep(2)
                profile = _profile(
                    worker_pid, profile_s, tmp / "profile.txt"
                )  # raw stacks stay in the temp folder
                spy.join()
            node.stop()

            # cold: a node that always asks the chain (one eth_call per verification)
            cold_db = f"sqlite:///{tmp / 'cold.sqlite'}"
            cold_key = _register_bank(cold_db)
            cold = NodeProcess(
                _node_env(home, proxy.url, index_max_lag_blocks="-1", database_url=cold_db),
                tmp / "cold.log",
                workers=1,
            )
            nodes.append(cold)
            cold.start()
            _sequential_ms(cold.url, cold_key, bodies[-3:])  # connections, first imports
            cold_before = proxy.snapshot()
            cold_ms, cold_answers = _sequential_ms(cold.url, cold_key, bodies[:cold_samples])
            cold_rpc = proxy.snapshot() - cold_before
            cold.stop()
            if any((a["verdict"], a["source"]) != ("VALID", "chain") for a in cold_answers):
                raise RuntimeError(f"cold answers were not VALID from the chain: {cold_answers[0]}")
        finally:
            for running in nodes:
                running.stop()
            proxy.close()
            chain.stop()

    requests = run["requests"] or 1
    idle_rate = idle["(requests)"] / 5
    return {
        "verifications_per_s": round(run["requests_per_s"]),
        "p50_ms": run["latency_ms"].get("p50"),
        "p99_ms": run["latency_ms"].get("p99"),
        "latency_ms": run["latency_ms"],
        "concurrency": connections,
        "duration_s": duration_s,
        "requests": run["requests"],
        "non_2xx": run["non_2xx"],
        "socket_errors": run["socket_errors"],
        "distinct_packages": len(bodies),
        "request_bytes_avg": round(sum(map(len, bodies)) / len(bodies)),
        "registry_certificates": certificates,
        "workers": workers,
        "cold_ms": round(statistics.median(cold_ms), 2),
        "cold_rpc_per_verification": {
            m: round(n / cold_samples, 2) for m, n in cold_rpc.items() if m != "(requests)"
        },
        "warm_single_ms": round(statistics.median(warm_ms), 2),
        "worker_cpu_ms_per_verification": round(1000 * worker_cpu_s / requests, 3),
        "worker_cores_busy": round(worker_cpu_s / duration_s, 2),
        "node_process_cpu_ms_per_verification": round(1000 * node_cpu_s / requests, 3),
        "chain_calls_per_verification": round(during.get("eth_call", 0) / requests, 4),
        "rpc_during_run": dict(during),
        "rpc_background_per_s": round(idle_rate, 1),
        "rpc_beyond_background_per_verification": round(
            max(0.0, during["(requests)"] - idle_rate * duration_s) / requests, 4
        ),
        "setup": {"issue_s": round(issue_s, 1), "index_catch_up_s": round(index_s, 1)},
        "profile": profile,
        "goals": {"verifications_per_s_min": 2000, "p99_ms_max": 25, "chain_calls_per_verification": 0},
        "machine": {
            "cores": os.cpu_count(),
            "arch": platform.machine(),
            "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
            "speed": baseline(),
        },
        "wrk": output.strip().splitlines(),
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
