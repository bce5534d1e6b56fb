"""Databases, keystores and holder packages are made 0600 in 0700 folders, whatever the umask
(issue 10, point 19): the tests run under umask 000, where `mkdir` and `open` give everyone
everything unless the code sets modes itself."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from issuer.settings import IssuerSettings
from registry.keys import Keystore
from registry.secrets_files import load_or_create_secret
from registry.settings import Settings
from verifier.settings import VerifierSettings
from wallet.settings import WalletSettings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def core(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in [n for n in os.environ if n.startswith("ECERT_")]:
        monkeypatch.delenv(name)
    return Settings(home=tmp_path / "state" / ".ecert")


@pytest.mark.parametrize(
    ("settings", "folder", "database"),
    [
        (IssuerSettings, "issuer", "issuer.sqlite"),
        (lambda: VerifierSettings(region="330000"), "verifier-330000", "verifier.sqlite"),
        (WalletSettings, "wallet", "wallet.sqlite"),
    ],
)
def test_service_databases_under_the_home_are_0600_in_0700_folders(
    core: Settings, settings, folder: str, database: str
) -> None:
    url = settings().url(core)
    path = core.home / folder / database
    assert url == f"sqlite:///{path.resolve()}"
    assert (mode(path), mode(path.parent), mode(core.home), mode(core.home.parent)) == (
        0o600,
        0o700,
        0o700,
        0o700,
    )
    # a database and folder an older version left open are closed again
    os.chmod(path, 0o644)
    os.chmod(path.parent, 0o755)
    settings().url(core)
    assert (mode(path), mode(path.parent)) == (0o600, 0o700)


def test_a_database_written_through_sqlalchemy_stays_0600(core: Settings) -> None:
    from verifier.db import make_engine, migrate

    url = VerifierSettings(region="330000").url(core)
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    files = list((core.home / "verifier-330000").iterdir())
    assert files and {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}


def test_keystores_are_0600_in_a_0700_folder(tmp_path: Path) -> None:
    folder = tmp_path / "home" / "keys"
    store = Keystore(folder, "correct horse", scrypt_n=1024)
    store.create("agency-1")
    assert (mode(folder / "agency-1.json"), mode(folder), mode(folder.parent)) == (0o600, 0o700, 0o700)
    os.chmod(folder, 0o755)  # an old keystore folder is closed at the next write
    (folder / "agency-2.tmp").write_text("left over")  # a stale temporary file keeps no open mode
    os.chmod(folder / "agency-2.tmp", 0o666)
    store.create("agency-2")
    assert (mode(folder / "agency-2.json"), mode(folder)) == (0o600, 0o700)


def test_secret_files_are_0600_in_0700_folders(tmp_path: Path) -> None:
    path = tmp_path / "node" / "keys" / "share-hmac.key"
    assert len(load_or_create_secret(path)) == 32
    assert (mode(path), mode(path.parent), mode(path.parent.parent)) == (0o600, 0o700, 0o700)


def test_holder_packages_written_by_ecert_issue_are_0600_in_a_0700_folder(tmp_path: Path) -> None:
    from issuer.cli import _out_folder, _write_packages

    presentation = SimpleNamespace(to_json=lambda: {"holder": {"name": "张三"}}, to_ec1=lambda: "EC1:TEST")
    job = SimpleNamespace(
        id="job-1",
        errors=[{"position": 2, "code": "FIELD_INVALID", "field": "holder.code", "message": "bad"}],
    )
    service = SimpleNamespace(
        job_packages=lambda agency, job_id: [("ID-1", presentation)], job=lambda agency, job_id: job
    )
    out = tmp_path / "issued" / "zj"
    _out_folder(out)
    runtime = SimpleNamespace(
        service=service, settings=SimpleNamespace(verifier_url="https://verify.example")
    )
    assert _write_packages(runtime, "AGENCY", [job], out, qr=True) == (1, 1)
    written = {p.name: mode(p) for p in out.iterdir()}
    assert written == {"ID-1.json": 0o600, "ID-1.png": 0o600, "rejected.jsonl": 0o600}
    assert (mode(out), mode(out.parent)) == (0o700, 0o700)
    assert json.loads((out / "ID-1.json").read_text("utf-8")) == {"holder": {"name": "张三"}}
    # writing again over files an older version left 0644 closes them
    os.chmod(out / "ID-1.json", 0o644)
    _write_packages(runtime, "AGENCY", [job], out, qr=False)
    assert mode(out / "ID-1.json") == 0o600


def test_the_demo_folders_and_password_file_are_private(core: Settings) -> None:
    from issuer.demo import DEMO_FOLDERS, ensure_password, make_demo_folders

    make_demo_folders(core.home)
    ensure_password(SimpleNamespace(settings=core))
    assert mode(core.home) == 0o700 and mode(core.default_password_file) == 0o600
    assert {name: mode(core.home / name) for name in DEMO_FOLDERS} == dict.fromkeys(DEMO_FOLDERS, 0o700)
