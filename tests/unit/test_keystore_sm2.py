"""SM2 keys in the encrypted keystore (`<name>.sm2` beside `<name>.json`): round trip, wrong
password, nothing in clear but the public key, 0600 files, names and damage refused."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from registry.errors import KeystoreError
from registry.keys import Keystore
from registry.national import key_id, public_key, sm2_sign, sm2_verify

PASSWORD = "correct horse battery staple"


def keystore(folder: Path, password: str = PASSWORD) -> Keystore:
    return Keystore(folder, password, scrypt_n=1024)  # fast scrypt: test keys only


def test_round_trip_signs_with_the_stored_key(tmp_path: Path) -> None:
    store = keystore(tmp_path / "keys")
    public = store.create_national("agency-11330100002493028E")
    assert len(public) == 64 and store.has_national("agency-11330100002493028E")
    assert store.national_public_key("agency-11330100002493028E") == public
    with store.unlocked_national("agency-11330100002493028E") as private:
        assert public_key(private) == public
        signature = sm2_sign(private, b"ecert-national-seal/1" + bytes(32))
    assert sm2_verify(public, b"ecert-national-seal/1" + bytes(32), signature)
    # a second keystore object on the same folder (another process) reads the same key
    with keystore(tmp_path / "keys").unlocked_national("agency-11330100002493028E") as again:
        assert public_key(again) == public


def test_the_file_holds_no_plaintext_private_key_and_is_private(tmp_path: Path) -> None:
    store = keystore(tmp_path / "keys")
    store.create("agency-x")  # the secp256k1 key beside it
    store.create_national("agency-x")
    path = tmp_path / "keys" / "agency-x.sm2"
    text = path.read_text()
    with store.unlocked_national("agency-x") as private:
        assert private.hex() not in text.lower() and private.hex().upper() not in text
        assert private not in path.read_bytes()
    keyfile = json.loads(text)
    assert keyfile["format"] == "ecert-sm2-key" and keyfile["cipher"] == "aes-256-gcm"
    assert keyfile["kdf"] == "scrypt" and keyfile["kdfparams"]["n"] == 1024
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert store.names() == ["agency-x"]  # the SM2 file is no secp256k1 key
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["agency-x.json", "agency-x.sm2"]


def test_a_wrong_password_is_refused(tmp_path: Path) -> None:
    keystore(tmp_path / "keys").create_national("agency-x")
    wrong = keystore(tmp_path / "keys", "not the password")
    assert len(wrong.national_public_key("agency-x")) == 64  # readable without the password
    with pytest.raises(KeystoreError) as caught, wrong.unlocked_national("agency-x"):
        pass
    assert caught.value.code == "KEY_DECRYPT_FAILED"


def test_a_swapped_public_key_is_refused(tmp_path: Path) -> None:
    """The public key is bound to the ciphertext: another key's public key in the file does not decrypt."""
    store = keystore(tmp_path / "keys")
    store.create_national("a")
    other = store.create_national("b")
    path = tmp_path / "keys" / "a.sm2"
    keyfile = json.loads(path.read_text())
    keyfile["publicKey"] = other.hex()
    path.write_text(json.dumps(keyfile))
    with pytest.raises(KeystoreError) as caught, store.unlocked_national("a"):
        pass
    assert caught.value.code == "KEY_DECRYPT_FAILED"


def test_existing_missing_and_renamed_keys(tmp_path: Path) -> None:
    store = keystore(tmp_path / "keys")
    public = store.create_national("agency-x")
    with pytest.raises(KeystoreError) as exists:
        store.create_national("agency-x")
    assert exists.value.code == "KEY_EXISTS"
    with pytest.raises(KeystoreError) as missing:
        store.national_public_key("agency-y")
    assert missing.value.code == "KEY_NOT_FOUND"
    store.rename_national("agency-x", f"agency-x.retired-{key_id(public)[:4].hex()}")
    assert not store.has_national("agency-x")
    assert store.national_public_key(f"agency-x.retired-{key_id(public)[:4].hex()}") == public
    with pytest.raises(KeystoreError):
        store.create_national("../escape")
