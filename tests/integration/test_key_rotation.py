"""An agency's key rotated while the issuer runs, with certificates taken in but not yet anchored:
they are sealed again by the new key and anchored with it, and verify VALID. `rotate-key`
rotates the SM2 key too: their national co-seals are made again by the new SM2 key, which the
verifier's `national-seal` check then finds good at anchor time."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_process import ECERT, ecert_home_env

from issuer.runtime import IssuerRuntime
from registry.certificate.national_seal import check_seal
from registry.certificate.seal import recover_sealer
from registry.national import public_key

pytestmark = pytest.mark.chain

AGENCY, TYPE = "11330100002493028E", "11100000000013338W001"


def ecert(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([*ECERT, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"ecert {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    env = ecert_home_env(tmp_path)
    for name, value in env.items():
        if name.startswith("ECERT_"):
            monkeypatch.setenv(name, value)  # the in-process runtime reads the same home
    ecert(env, "chain", "up")
    try:
        ecert(env, "deploy")
        ecert(env, "authority", "add", "--region", "330000", "--name", "浙江省数据局")
        ecert(
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
        yield env
    finally:
        subprocess.run([*ECERT, "chain", "down"], env=env, capture_output=True, timeout=60)


def test_certificates_pending_at_a_rotation_are_sealed_again_and_verify(
    env: dict[str, str], tmp_path: Path
) -> None:
    runtime = IssuerRuntime.open()
    try:
        runtime.register_agency(AGENCY)
        records = [
            {"holder": {"name": name, "code": "11010519491231002X"}, "validUntil": "2036-12-31"}
            for name in ("甲", "乙")
        ]
        job = runtime.service.submit(AGENCY, TYPE, records, type_name="营业执照")
        old_key = runtime.signers(AGENCY).address
        old_sm2 = runtime.signers.national_key(AGENCY)

        ecert(env, "agency", "rotate-key", "--code", AGENCY)  # the old key is retired on chain from now on
        new_key = runtime.signers(AGENCY).address
        new_sm2 = runtime.signers.national_key(AGENCY)
        assert new_key != old_key and old_sm2 is not None and new_sm2 is not None and new_sm2 != old_sm2

        runtime.worker.run_until_idle(timeout_s=60)
        packages = [package for _, package in runtime.service.job_packages(AGENCY, job.id)]
    finally:
        runtime.close()
    assert len(packages) == 2
    for n, package in enumerate(packages):
        assert recover_sealer(package.chain_id, package.registry, package.digest, package.seal) == new_key
        assert package.national_seal is not None
        sealers = [public_key(old_sm2), public_key(new_sm2)]
        assert check_seal(
            sealers, package.chain_id, package.registry, package.digest, package.national_seal
        ) == (public_key(new_sm2))
        path = tmp_path / f"cert-{n}.json"
        path.write_text(json.dumps(package.to_json(), ensure_ascii=False))
        report = json.loads(ecert(env, "verify", "--json", str(path)))
        assert report["verdict"] == "VALID"
        assert [(c["kind"], c["code"]) for c in report["checks"] if c["kind"] == "national-seal"] == [
            ("national-seal", "NATIONAL_SEAL_OK")
        ]
