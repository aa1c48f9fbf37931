"""TLS material for the API: the operator's certificate, or a self-signed one made at first
start.

A self-signed certificate is better than plain HTTP on a LAN (passive eavesdroppers see
nothing; the browser's warning is shown once and the certificate can be pinned/trusted),
and it needs no outbound connection. The key is ECDSA P-256, written 0600 in a 0700
directory; a certificate close to expiry or missing a configured host name is replaced.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from vigil.config.api_model import ApiTlsConfig

CERT_NAME = "cert.pem"
KEY_NAME = "key.pem"
VALIDITY_DAYS = 825  # the longest browsers accept for a leaf certificate
RENEW_BEFORE_DAYS = 30


def _write_0600(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _sans(hostnames: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for h in hostnames:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            out.append(x509.DNSName(h))
    return out


def _usable(cert_path: Path, hostnames: list[str]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return False
    now = dt.datetime.now(dt.UTC)
    if cert.not_valid_after_utc - now < dt.timedelta(days=RENEW_BEFORE_DAYS):
        return False
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have = {str(n.value) for n in ext}
    return all(str(n.value) in have for n in _sans(hostnames))


def ensure_self_signed(directory: Path, hostnames: list[str]) -> tuple[Path, Path]:
    """(cert, key) paths in ``directory``, generating them if missing, expiring or not
    covering ``hostnames``."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    cert_path, key_path = directory / CERT_NAME, directory / KEY_NAME
    names = hostnames or ["localhost"]
    if key_path.exists() and _usable(cert_path, names):
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALIDITY_DAYS))
        .add_extension(x509.SubjectAlternativeName(_sans(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    _write_0600(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    _write_0600(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def tls_files(cfg: ApiTlsConfig, storage_root: Path) -> tuple[Path, Path] | None:
    """The (cert, key) to serve with, or None when TLS is off."""
    if not cfg.enabled:
        return None
    if cfg.cert_file is not None and cfg.key_file is not None:
        return cfg.cert_file, cfg.key_file
    return ensure_self_signed(cfg.self_signed_dir or storage_root / ".tls", cfg.hostnames)


def fingerprint(cert_path: Path) -> str:
    """SHA-256 fingerprint (colon-separated hex), to compare with the browser's."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))
