"""The instance key store: first-run creation, file modes, encryption at rest, rotation."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vigil.evidence.keys import (
    ENV_PASSPHRASE,
    REGISTRY_FILE,
    SECRET_FILE,
    KeyStore,
    KeyStoreError,
    fingerprint_of,
    normalize_fingerprint,
    verify_raw,
)


@pytest.fixture(autouse=True)
def _no_env_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_PASSPHRASE, raising=False)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _pem_files(d: Path) -> list[Path]:
    return sorted(d.glob("instance-*.pem"))


def test_first_run_creates_key_with_strict_modes(tmp_path: Path) -> None:
    d = tmp_path / "keys"
    ks = KeyStore(d)
    assert _mode(d) == 0o700
    files = [p for p in d.iterdir()]
    assert {p.name for p in files} >= {REGISTRY_FILE, SECRET_FILE, ".lock"}
    assert len(_pem_files(d)) == 1
    for p in files:
        assert _mode(p) == 0o600, p.name
    info = ks.active
    assert info.active and info.trusted and len(info.public_raw) == 32
    assert info.fingerprint == fingerprint_of(info.public_raw)
    assert len(info.fingerprint.split()) == 16  # 64 hex digits in groups of four


def test_loose_directory_mode_is_tightened(tmp_path: Path) -> None:
    d = tmp_path / "keys"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    KeyStore(d)
    assert _mode(d) == 0o700


def test_reopen_keeps_the_same_key(tmp_path: Path) -> None:
    a = KeyStore(tmp_path / "k")
    b = KeyStore(tmp_path / "k")
    assert a.active.key_id == b.active.key_id
    _, sig = b.sign(b"hello")
    assert a.active.verify(b"hello", sig)


def test_private_key_is_encrypted_at_rest(tmp_path: Path) -> None:
    d = tmp_path / "k"
    KeyStore(d)
    pem = _pem_files(d)[0].read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):  # "password was not given but private key is encrypted"
        serialization.load_pem_private_key(pem, password=None)
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(pem, password=b"not the secret")
    secret = (d / SECRET_FILE).read_bytes().strip()
    key = serialization.load_pem_private_key(pem, password=secret)
    assert isinstance(key, Ed25519PrivateKey)


def test_passphrase_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "k"
    monkeypatch.setenv(ENV_PASSPHRASE, "correct horse battery staple")
    ks = KeyStore(d)
    info, sig = ks.sign(b"data")
    assert not (d / SECRET_FILE).exists()  # the secret never touches the disk
    pem = _pem_files(d)[0].read_bytes()
    assert serialization.load_pem_private_key(pem, password=b"correct horse battery staple")

    monkeypatch.delenv(ENV_PASSPHRASE)
    without = KeyStore(d)  # public side still readable: verification works without it
    assert without.verify(info.key_id, b"data", sig)
    with pytest.raises(KeyStoreError, match=ENV_PASSPHRASE):
        without.sign(b"data")
    with pytest.raises(KeyStoreError, match="cannot decrypt"):
        KeyStore(d, passphrase="wrong").sign(b"data")


def test_rotation_keeps_old_keys_verifying(tmp_path: Path) -> None:
    d = tmp_path / "k"
    ks = KeyStore(d)
    old, old_sig = ks.sign(b"chain head 1")
    new = ks.rotate()
    assert new.key_id != old.key_id and new.trusted and new.active
    cur, new_sig = ks.sign(b"chain head 2")
    assert cur.key_id == new.key_id

    again = KeyStore(d)  # what a verifier opening the directory later sees
    keys = again.public_keys()
    assert [k.key_id for k in keys] == [old.key_id, new.key_id]
    assert keys[0].retired_us is not None and keys[0].retired_us >= keys[0].created_us
    assert keys[1].retired_us is None
    assert again.verify(old.key_id, b"chain head 1", old_sig)
    assert again.verify(new.key_id, b"chain head 2", new_sig)
    assert not again.verify(new.key_id, b"chain head 1", old_sig)
    assert again.get(old.fingerprint) == keys[0]  # lookup by grouped fingerprint
    # the retired private key is gone: nothing can sign as the old key any more
    assert len(_pem_files(d)) == 1
    for p in d.iterdir():
        assert _mode(p) == 0o600


def test_other_process_rotation_is_noticed(tmp_path: Path) -> None:
    a = KeyStore(tmp_path / "k")
    b = KeyStore(tmp_path / "k")
    first = a.active
    b.rotate()
    info, sig = a.sign(b"x")  # a must not keep signing with the retired key
    assert info.key_id != first.key_id
    assert b.verify(info.key_id, b"x", sig)


def test_key_slipped_into_registry_is_untrusted(tmp_path: Path) -> None:
    d = tmp_path / "k"
    ks = KeyStore(d)
    ks.rotate()
    doc = json.loads((d / REGISTRY_FILE).read_text())
    intruder = Ed25519PrivateKey.generate()
    raw = intruder.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    doc["keys"].append(
        {
            "key_id": hashlib.sha256(raw).hexdigest(),
            "public_key": base64.b64encode(raw).decode(),
            "created_us": 1,
            "retired_us": None,
            "endorsement": base64.b64encode(b"\0" * 64).decode(),
            "private_key_file": None,
            "kek": "file",
        }
    )
    (d / REGISTRY_FILE).write_text(json.dumps(doc))
    again = KeyStore(d)
    forged = again.get(hashlib.sha256(raw).hexdigest())
    assert forged is not None and not forged.trusted
    sig = intruder.sign(b"forged head")
    assert verify_raw(raw, b"forged head", sig)
    assert not again.verify(forged.key_id, b"forged head", sig)
    assert all(k.trusted for k in again.public_keys()[:2])


def test_damaged_registry_is_a_clear_error(tmp_path: Path) -> None:
    d = tmp_path / "k"
    KeyStore(d)
    (d / REGISTRY_FILE).write_text("{not json")
    with pytest.raises(KeyStoreError, match="damaged"):
        KeyStore(d)


def test_normalize_fingerprint() -> None:
    assert normalize_fingerprint("AB12 cd34:EF-56") == "ab12cd34ef56"
