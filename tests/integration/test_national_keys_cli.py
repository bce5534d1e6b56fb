"""`ecert agency add | rotate-key | show | add-national-key | compromise-key` with both keys of an
agency (secp256k1 and SM2), as a user runs them: its own chain, keystore and files in a temporary home.

Each test works on its own agency, so the tests hold in any order and split across xdist workers
(each worker makes its own home and chain)."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from service_process import ECERT, ecert_home_env

from registry.certificate.identifiers import uscc_check_char
from registry.national import key_id, public_key
from registry.workspace import Workspace

pytestmark = pytest.mark.chain

TYPE = "11100000000013338W001"


def uscc(serial: int) -> str:
    """A valid 统一社会信用代码 of an agency in 330100, one per test."""
    first17 = f"11330100MB{serial:07d}"
    return first17 + uscc_check_char(first17)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ecert-national")


@pytest.fixture(scope="module")
def env(home: Path) -> dict[str, str]:
    return ecert_home_env(home)


def ecert(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ECERT, *args], env=env, capture_output=True, text=True, timeout=120)


def must(env: dict[str, str], *args: str) -> str:
    done = ecert(env, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def show(env: dict[str, str], code: str) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(must(env, "agency", "show", "--code", code, "--json"))
    return shown


@pytest.fixture(scope="module")
def chain(env: dict[str, str]):  # type: ignore[no-untyped-def]
    must(env, "chain", "up")
    must(env, "deploy")
    must(env, "authority", "add", "--region", "330000", "--name", "浙江省数据局")
    yield
    ecert(env, "chain", "down")


@pytest.fixture
def workspace(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """The same home, in this process (to look into the keystore and to make a pre-SM2 agency)."""
    for name, value in env.items():
        if name.startswith("ECERT_"):
            monkeypatch.setenv(name, value)
    return Workspace()


def register_without_sm2(ws: Workspace, code: str, region: int) -> None:
    """An agency as `ecert agency add` registered it before this change: a secp256k1 key only."""
    address = ws.keystore.create(f"agency-{code}")
    ws.fund_if_dev(address)
    with ws.keystore.unlocked("authority-330000") as authority:
        ws.registry.register_agency(authority, code, region, "杭州市交通运输局", address, [TYPE])


def add(env: dict[str, str], code: str) -> str:
    return must(
        env,
        "agency",
        "add",
        "--region",
        "330100",
        "--code",
        code,
        "--name",
        "杭州市市场监督管理局",
        "--types",
        TYPE,
    )


def test_add_creates_and_registers_both_keys(
    chain, env: dict[str, str], home: Path, workspace: Workspace
) -> None:
    code = uscc(1)
    out = add(env, code)
    keys = home / ".ecert" / "keys"
    sm2_file = keys / f"agency-{code}.sm2"
    assert sm2_file.exists() and stat.S_IMODE(sm2_file.stat().st_mode) == 0o600
    public = workspace.keystore.national_public_key(f"agency-{code}")
    with workspace.keystore.unlocked_national(f"agency-{code}") as private:
        assert public_key(private) == public
        assert private.hex() not in sm2_file.read_text() and private.hex() not in out
    assert f"0x{key_id(public).hex()}" in out

    shown = show(env, code)
    assert [k["address"] for k in shown["keys"]] == [workspace.keystore.address(f"agency-{code}")]
    (national,) = shown["nationalKeys"]
    assert national["publicKey"] == "0x" + public.hex() and national["keyId"] == "0x" + key_id(public).hex()
    assert (national["retiredAt"], national["compromisedSince"]) == (0, 0)
    assert national["validFrom"] == shown["keys"][0]["validFrom"]  # registered in the same command

    text = must(env, "agency", "show", "--code", code)
    assert "SM2 keys (national co-seal):" in text and public.hex() in text and key_id(public).hex() in text
    assert "secp256k1 keys" in text and shown["keys"][0]["address"] in text and "current" in text


def test_rotate_key_rotates_both_keys(chain, env: dict[str, str], workspace: Workspace) -> None:
    code = uscc(2)
    add(env, code)
    before = show(env, code)
    old_sm2 = workspace.keystore.national_public_key(f"agency-{code}")
    out = must(env, "agency", "rotate-key", "--code", code)
    new_sm2 = workspace.keystore.national_public_key(f"agency-{code}")
    assert new_sm2 != old_sm2 and f"0x{key_id(new_sm2).hex()}" in out
    assert (
        workspace.keystore.national_public_key(f"agency-{code}.retired-{key_id(old_sm2)[:4].hex()}")
        == old_sm2
    )
    assert not workspace.keystore.has_national(f"agency-{code}.next")

    after = show(env, code)
    assert len(after["keys"]) == 2 and len(after["nationalKeys"]) == 2
    old, new = after["nationalKeys"]
    assert (old["keyId"], new["keyId"]) == ("0x" + key_id(old_sm2).hex(), "0x" + key_id(new_sm2).hex())
    assert old["validFrom"] == before["nationalKeys"][0]["validFrom"]
    # the old key is retired from the moment the new one is valid: no gap, as for the secp256k1 key
    assert new["retiredAt"] == 0 and old["retiredAt"] >= new["validFrom"]
    old_secp, new_secp = after["keys"]
    assert old_secp["retiredAt"] >= new_secp["validFrom"] and new_secp["retiredAt"] == 0
    assert old["retiredAt"] <= old_secp["retiredAt"]  # the SM2 key is retired while the old key still may
    registry = workspace.registry
    assert registry.was_national_key_valid_at(key_id(old_sm2), old["retiredAt"])
    assert not registry.was_national_key_valid_at(key_id(old_sm2), old["retiredAt"] + 1)
    assert registry.was_national_key_valid_at(key_id(new_sm2), old["retiredAt"])


def test_an_agency_from_before_gets_its_sm2_key(chain, env: dict[str, str], workspace: Workspace) -> None:
    code = uscc(3)  # registered before the national co-seal: no SM2 key
    register_without_sm2(workspace, code, 330100)
    assert show(env, code)["nationalKeys"] == []
    assert "none: run `ecert agency add-national-key" in must(env, "agency", "show", "--code", code)

    out = must(env, "agency", "add-national-key", "--code", code)
    public = workspace.keystore.national_public_key(f"agency-{code}")
    assert f"0x{key_id(public).hex()}" in out
    (national,) = show(env, code)["nationalKeys"]
    assert national["publicKey"] == "0x" + public.hex() and national["retiredAt"] == 0
    again = must(env, "agency", "add-national-key", "--code", code)
    assert "registered already" in again and len(show(env, code)["nationalKeys"]) == 1


def test_rotating_an_agency_from_before_gives_it_an_sm2_key(
    chain, env: dict[str, str], workspace: Workspace
) -> None:
    code = uscc(4)  # registered before the national co-seal: no SM2 key
    register_without_sm2(workspace, code, 330100)
    must(env, "agency", "rotate-key", "--code", code)
    shown = show(env, code)
    assert len(shown["keys"]) == 2 and shown["keys"][0]["retiredAt"] > 0
    (national,) = shown["nationalKeys"]
    public = workspace.keystore.national_public_key(f"agency-{code}")
    assert national["publicKey"] == "0x" + public.hex() and national["retiredAt"] == 0


def test_compromise_key_takes_an_sm2_key_id(chain, env: dict[str, str], workspace: Workspace) -> None:
    code = uscc(5)
    add(env, code)
    current = show(env, code)["nationalKeys"][-1]
    since = current["validFrom"]
    must(env, "agency", "compromise-key", "--code", code, "--key", current["keyId"], "--since", str(since))
    assert show(env, code)["nationalKeys"][-1]["compromisedSince"] == since
    assert "compromised since" in must(env, "agency", "show", "--code", code)
