"""The instance signing key: an Ed25519 key pair that signs chain heads, tombstones and
evidence packages.

Layout of the key directory (mode 0700, every file 0600)::

    keys.json             registry: every public key ever used, with created/retired times
    instance-<id>.pem     the *active* private key, PKCS#8, encrypted (BestAvailableEncryption)
    keyfile.secret        random key-encryption secret, only when no passphrase is supplied
    .lock                 serialises first-run creation and rotation between processes

Where the key-encryption secret comes from, and what that buys
---------------------------------------------------------------
1. ``passphrase=`` argument, else the ``VIGIL_KEY_PASSPHRASE`` environment variable: the
   secret never touches the disk, so a stolen disk, a backup of the key directory or a
   copied PEM cannot sign anything. The price: the passphrase must be provided at every start
   (systemd credential, secret manager, operator), a recorder cannot sign without it, and
   while running it sits in the process environment, readable by root and the same user.
2. Otherwise a random 256-bit secret in ``keyfile.secret`` (0600). This is honest about
   what it is: it protects against the PEM leaking *on its own* (a log upload, a support
   bundle, a backup that excludes the secret) and keeps the private key out of plain text,
   but anyone who can read the whole directory as the Vigil user or root can sign. It exists
   so that a default install signs evidence at all, with no operator step.

Signatures prove "made by whoever held this key"; the key's fingerprint must be compared out
of band by whoever relies on it. Neither option defends against an attacker who controls the
running recorder; an HSM or remote signer would, and can be added behind :meth:`KeyStore.sign`.

Rotation
--------
:meth:`KeyStore.rotate` makes a new active key, retires the old one (its public key stays in
the registry with created/retired times, so older exports and chain signatures still verify)
and deletes the old private key, so a leaked old backup of the directory cannot forge
signatures under the new key. The new key is *endorsed*: the old key signs the new public
key. A key that appears in ``keys.json`` without a valid endorsement from its predecessor
(someone edited the registry to slip in their own key) is kept but marked untrusted, and
:meth:`KeyStore.verify` refuses signatures made with it.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from vigil.evidence import canonical
from vigil.evidence.report import EvidenceError

log = logging.getLogger(__name__)

ENV_PASSPHRASE = "VIGIL_KEY_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)
SECRET_FILE = "keyfile.secret"  # noqa: S105 (a file name)
REGISTRY_FILE = "keys.json"
LOCK_FILE = ".lock"
ENDORSEMENT_TAG = "vigil-key-endorsement-v1"
_REGISTRY_VERSION = 1


class KeyStoreError(EvidenceError):
    """The key directory is unusable: wrong/missing passphrase, damaged files, bad modes."""


def key_id_of(public_raw: bytes) -> str:
    """Stable identifier of a public key: lower-case hex SHA-256 of the 32 raw bytes."""
    return hashlib.sha256(public_raw).hexdigest()


def format_fingerprint(key_id: str) -> str:
    """Group a hex key id in fours (``ab12 cd34 ...``) so people can compare it aloud."""
    return " ".join(key_id[i : i + 4] for i in range(0, len(key_id), 4))


def fingerprint_of(public_raw: bytes) -> str:
    """Human fingerprint of a raw Ed25519 public key: grouped hex of its SHA-256."""
    return format_fingerprint(key_id_of(public_raw))


def normalize_fingerprint(text: str) -> str:
    """Accept a fingerprint as typed (spaces, colons, dashes, any case) -> plain hex."""
    return "".join(c for c in text.lower() if c in "0123456789abcdef")


def verify_raw(public_raw: bytes, data: bytes, signature: bytes) -> bool:
    """Ed25519 verification with a raw public key; False on any malformed input."""
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, data)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def endorsement_message(public_raw: bytes, created_us: int) -> bytes:
    """What a retiring key signs to vouch for its successor."""
    return canonical.encode(ENDORSEMENT_TAG, public_raw, created_us)


@dataclass(frozen=True, slots=True)
class PublicKeyInfo:
    """One registered public key. ``retired_us`` is None for the active key."""

    key_id: str
    public_raw: bytes
    created_us: int
    retired_us: int | None = None
    endorsement: bytes | None = None  # predecessor's signature over endorsement_message
    trusted: bool = True  # first key, or validly endorsed by a trusted predecessor

    @property
    def fingerprint(self) -> str:
        return format_fingerprint(self.key_id)

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public_raw).decode("ascii")

    @property
    def active(self) -> bool:
        return self.retired_us is None

    def verify(self, data: bytes, signature: bytes) -> bool:
        return verify_raw(self.public_raw, data, signature)


def _now_us() -> int:
    return time.time_ns() // 1000


class KeyStore:
    """The instance key pair and the registry of every public key it has had.

    Creates the directory and the first key on construction (first run). Thread-safe; safe
    across processes for creation and rotation (an exclusive ``flock``). A process that keeps
    a ``KeyStore`` open notices another process's rotation on its next :meth:`sign`.
    """

    def __init__(self, directory: Path, passphrase: str | None = None) -> None:
        self.dir = Path(directory)
        self._passphrase = passphrase if passphrase is not None else os.environ.get(ENV_PASSPHRASE)
        if self._passphrase == "":
            self._passphrase = None
        self._keys: list[PublicKeyInfo] = []
        self._active_id = ""
        self._files: dict[str, str] = {}  # key id -> private key file name (active only)
        self._kek: dict[str, str] = {}  # key id -> "passphrase" | "file"
        self._stamp: tuple[int, int, int] | None = None
        self._private: tuple[str, Ed25519PrivateKey] | None = None
        self._ensure_dir()
        with self._locked():
            if not (self.dir / REGISTRY_FILE).exists():
                self._create_first()
            self._load()

    # -- public API -----------------------------------------------------------------------------
    @property
    def active(self) -> PublicKeyInfo:
        """The key new signatures are made with."""
        self._refresh()
        return self._by_id(self._active_id)

    def public_keys(self) -> list[PublicKeyInfo]:
        """All keys, oldest first (retired ones included)."""
        self._refresh()
        return list(self._keys)

    def get(self, key_id_or_fingerprint: str) -> PublicKeyInfo | None:
        """Look a key up by id or by fingerprint in any formatting."""
        self._refresh()
        want = normalize_fingerprint(key_id_or_fingerprint)
        return next((k for k in self._keys if k.key_id == want), None)

    def sign(self, data: bytes) -> tuple[PublicKeyInfo, bytes]:
        """Sign with the active key; returns the key used (store its id next to the
        signature, so verification after a rotation knows which public key to use)."""
        self._refresh()
        info = self._by_id(self._active_id)
        if self._private is None or self._private[0] != info.key_id:
            self._private = (info.key_id, self._load_private(info.key_id))
        return info, self._private[1].sign(data)

    def unlock(self) -> PublicKeyInfo:
        """Decrypt the active private key now (it is otherwise loaded on first use), so a
        missing or wrong passphrase fails at start-up with a clear error instead of at the
        first segment."""
        self.sign(b"vigil-key-unlock")
        return self.active

    def verify(self, key_id: str, data: bytes, signature: bytes) -> bool:
        """True if ``signature`` over ``data`` was made by the registered, trusted key."""
        info = self.get(key_id)
        return info is not None and info.trusted and info.verify(data, signature)

    def rotate(self) -> PublicKeyInfo:
        """Create a new active key, endorsed by the old one, and retire the old one."""
        with self._locked():
            self._load()
            old = self._by_id(self._active_id)
            old_private = self._load_private(old.key_id)
            now = _now_us()
            new_priv = Ed25519PrivateKey.generate()
            raw = _raw_public(new_priv)
            new = PublicKeyInfo(
                key_id=key_id_of(raw),
                public_raw=raw,
                created_us=now,
                endorsement=old_private.sign(endorsement_message(raw, now)),
            )
            kek = self._write_private(new_priv, new.key_id)
            keys = [replace(k, retired_us=now) if k.key_id == old.key_id else k for k in self._keys]
            keys.append(new)
            old_file = self._files.get(old.key_id)
            self._kek[new.key_id] = kek
            self._files = {new.key_id: _private_name(new.key_id)}
            self._write_registry(keys, new.key_id)
            if old_file:
                # After rotation nothing may sign as the old key again: a leaked backup of
                # the directory must not let someone backdate signatures. (Unlinking does not
                # scrub flash/journalled blocks; full-disk encryption covers that.)
                with contextlib.suppress(FileNotFoundError):
                    (self.dir / old_file).unlink()
                _fsync_dir(self.dir)
            self._load()
            log.info("evidence key rotated", extra={"key": new.fingerprint})
            return self._by_id(new.key_id)

    # -- internals ---------------------------------------------------------------------------------
    def _by_id(self, key_id: str) -> PublicKeyInfo:
        for k in self._keys:
            if k.key_id == key_id:
                return k
        raise KeyStoreError(f"key {key_id} is not in {self.dir / REGISTRY_FILE}")

    def _ensure_dir(self) -> None:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = stat.S_IMODE(self.dir.stat().st_mode)
        if mode != 0o700:
            # Tighten rather than refuse: a permissive umask at install time should not
            # leave the key readable, nor stop the recorder.
            log.warning("tightening key directory mode", extra={"mode": oct(mode)})
            os.chmod(self.dir, 0o700)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _create_first(self) -> None:
        priv = Ed25519PrivateKey.generate()
        raw = _raw_public(priv)
        info = PublicKeyInfo(key_id=key_id_of(raw), public_raw=raw, created_us=_now_us())
        self._kek[info.key_id] = self._write_private(priv, info.key_id)
        self._files = {info.key_id: _private_name(info.key_id)}
        self._write_registry([info], info.key_id)
        log.info("evidence key created", extra={"key": info.fingerprint})

    def _secret(self, kek: str, *, create: bool) -> bytes:
        if kek == "passphrase":
            if self._passphrase is None:
                raise KeyStoreError(
                    f"the evidence key in {self.dir} is encrypted with a passphrase; "
                    f"set {ENV_PASSPHRASE}"
                )
            return self._passphrase.encode("utf-8")
        path = self.dir / SECRET_FILE
        try:
            return path.read_bytes().strip()
        except FileNotFoundError as e:
            if not create:
                raise KeyStoreError(
                    f"{path} is missing; the private key cannot be decrypted"
                ) from e
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32))
        _write_0600(path, secret + b"\n")
        return secret

    def _write_private(self, priv: Ed25519PrivateKey, key_id: str) -> str:
        kek = "passphrase" if self._passphrase is not None else "file"
        pem = priv.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self._secret(kek, create=True)),
        )
        _write_0600(self.dir / _private_name(key_id), pem)
        return kek

    def _load_private(self, key_id: str) -> Ed25519PrivateKey:
        name = self._files.get(key_id)
        if name is None:
            raise KeyStoreError(f"no private key for {format_fingerprint(key_id)} (retired?)")
        if "/" in name or "\\" in name or name.startswith("."):
            raise KeyStoreError(f"{self.dir / REGISTRY_FILE}: bad private key file name")
        path = self.dir / name
        try:
            pem = path.read_bytes()
        except FileNotFoundError as e:
            raise KeyStoreError(f"private key file {path} is missing") from e
        secret = self._secret(self._kek.get(key_id, "file"), create=False)
        try:
            key = serialization.load_pem_private_key(pem, password=secret)
        except (ValueError, TypeError) as e:
            raise KeyStoreError(
                f"cannot decrypt {path}: wrong key-encryption secret or damaged file"
            ) from e
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyStoreError(f"{path} is not an Ed25519 key")
        if key_id_of(_raw_public(key)) != key_id:
            raise KeyStoreError(f"{path} does not match the registered public key")
        return key

    def _write_registry(self, keys: list[PublicKeyInfo], active_id: str) -> None:
        doc = {
            "version": _REGISTRY_VERSION,
            "active": active_id,
            "keys": [
                {
                    "key_id": k.key_id,
                    "public_key": k.public_b64,
                    "created_us": k.created_us,
                    "retired_us": k.retired_us,
                    "endorsement": (
                        base64.b64encode(k.endorsement).decode("ascii") if k.endorsement else None
                    ),
                    "private_key_file": self._files.get(k.key_id),
                    "kek": self._kek.get(k.key_id),
                }
                for k in keys
            ],
        }
        _write_0600(self.dir / REGISTRY_FILE, json.dumps(doc, indent=2).encode("utf-8") + b"\n")

    def _refresh(self) -> None:
        try:
            st = (self.dir / REGISTRY_FILE).stat()
        except FileNotFoundError as e:
            raise KeyStoreError(f"{self.dir / REGISTRY_FILE} disappeared") from e
        if (st.st_ino, st.st_mtime_ns, st.st_size) != self._stamp:
            self._load()

    def _load(self) -> None:
        path = self.dir / REGISTRY_FILE
        try:
            st = path.stat()
            doc: dict[str, Any] = json.loads(path.read_bytes())
            entries = doc["keys"]
            active = str(doc["active"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise KeyStoreError(f"{path} is unreadable or damaged: {e}") from e
        try:
            keys, files, kek = _parse_entries(entries)
        except (ValueError, KeyError, TypeError) as e:
            raise KeyStoreError(f"{path} is damaged: {e}") from e
        if not any(k.key_id == active for k in keys):
            raise KeyStoreError(f"{path}: active key is not registered")
        self._keys, self._active_id, self._files, self._kek = keys, active, files, kek
        self._stamp = (st.st_ino, st.st_mtime_ns, st.st_size)


def _parse_entries(
    entries: list[dict[str, Any]],
) -> tuple[list[PublicKeyInfo], dict[str, str], dict[str, str]]:
    """Registry entries -> keys (with trust computed along the endorsement chain), private
    key file names and key-encryption-secret sources."""
    keys: list[PublicKeyInfo] = []
    files: dict[str, str] = {}
    kek: dict[str, str] = {}
    prev: PublicKeyInfo | None = None
    for ent in entries:
        raw = base64.b64decode(ent["public_key"], validate=True)
        kid = key_id_of(raw)
        if kid != ent["key_id"]:
            raise ValueError(f"key id {kid} does not match its public key")
        endorsement = base64.b64decode(ent["endorsement"]) if ent.get("endorsement") else None
        trusted = prev is None or (
            prev.trusted
            and endorsement is not None
            and prev.verify(endorsement_message(raw, int(ent["created_us"])), endorsement)
        )
        if not trusted:
            log.warning("evidence key without valid endorsement", extra={"key": kid})
        info = PublicKeyInfo(
            key_id=kid,
            public_raw=raw,
            created_us=int(ent["created_us"]),
            retired_us=None if ent.get("retired_us") is None else int(ent["retired_us"]),
            endorsement=endorsement,
            trusted=trusted,
        )
        keys.append(info)
        if ent.get("private_key_file"):
            files[kid] = str(ent["private_key_file"])
        kek[kid] = str(ent.get("kek") or "file")
        prev = info
    return keys, files, kek


def _private_name(key_id: str) -> str:
    return f"instance-{key_id[:16]}.pem"


def _raw_public(priv: Ed25519PrivateKey) -> bytes:
    return priv.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def _write_0600(path: Path, data: bytes) -> None:
    """Atomic write (temp file + fsync + rename + directory fsync) created with mode 0600,
    so the secret is never readable by others, not even for an instant."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # in case of an unusual umask/ACL default
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
