"""The evidence package format (version 1), shared by the exporter and the verifier.

A package is a flat directory::

    clip-001.mp4 ...   the footage, stream-copied (never re-encoded) from the recording
    README.txt         how to verify, for the recipient (its hash is in the manifest too)
    manifest.json      what this is: see :func:`build_manifest`; UTF-8 JSON
    manifest.sig       64-byte raw Ed25519 signature over the exact bytes of manifest.json

The manifest embeds the signing public key, so a package verifies with nothing but itself;
*who* signed is established by comparing the key's fingerprint out of band (phone, letter,
the operator's published fingerprint). Every file except the manifest and its signature is
listed with its SHA-256 and size, so the signature covers all content.

File names in a manifest are untrusted input for the verifier: only flat names of
``[A-Za-z0-9._-]`` are allowed (see :func:`unsafe_name_reason`), checked before any file is
opened, so a crafted manifest cannot make a verifier read or hash files outside the package.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

FORMAT = "vigil-evidence"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
README = "README.txt"
RESERVED = frozenset({MANIFEST, SIGNATURE})
MAX_MANIFEST_BYTES = 16 << 20  # a manifest is a few KB; refuse to parse absurd ones

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# DER prefix of an Ed25519 SubjectPublicKeyInfo; 12 bytes, so base64 concatenates cleanly.
_SPKI_PREFIX_B64 = "MCowBQYDK2VwAyEA"


def unsafe_name_reason(name: object) -> str | None:
    """Why ``name`` may not be used as a package file name, or None if it is safe."""
    if not isinstance(name, str):
        return "file name is not a string"
    if name == "":
        return "empty file name"
    if "\x00" in name:
        return "file name contains a NUL byte"
    if "\\" in name:
        return "file name contains a backslash"
    if "/" in name:
        return "absolute path" if name.startswith("/") else "file name contains a path separator"
    if name in (".", "..") or ".." in name:
        return "file name contains '..'"
    if re.match(r"^[A-Za-z]:", name):
        return "absolute (drive) path"
    if not _NAME.fullmatch(name):
        return "file name has characters outside [A-Za-z0-9._-] or is too long"
    if name in RESERVED:
        return "file name is reserved"
    return None


def encode_manifest(doc: dict[str, Any]) -> bytes:
    """The exact bytes that are signed: sorted keys, 2-space indent, UTF-8, final newline.
    (Verification never re-encodes; it checks the bytes as found.)"""
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def iso(us: int) -> str:
    """RFC 3339 UTC with microseconds, for people reading the manifest."""
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def time_range(start_us: int, end_us: int) -> dict[str, Any]:
    return {"start_us": start_us, "end_us": end_us, "start": iso(start_us), "end": iso(end_us)}


def spki_pem(public_b64: str) -> str:
    """PEM public key for OpenSSL, built from the raw base64 key without any library."""
    return f"-----BEGIN PUBLIC KEY-----\n{_SPKI_PREFIX_B64}{public_b64}\n-----END PUBLIC KEY-----\n"


def readme_text(
    *,
    export_id: str,
    camera: str,
    start_us: int,
    end_us: int,
    case_id: str,
    fingerprint: str,
    public_b64: str,
    clip_names: list[str],
) -> str:
    """README.txt for the recipient: what the package is and how to check it, including
    without Vigil (sha256sum + OpenSSL 3)."""
    clips = "\n".join(f"  {n}" for n in clip_names)
    return f"""VIGIL EVIDENCE PACKAGE
======================

Export id : {export_id}
Case id   : {case_id or "(none)"}
Camera    : {camera}
Range     : {iso(start_us)} to {iso(end_us)} (UTC)

Video files (stream copies of the original recording, not re-encoded):
{clips}

manifest.json describes the export: who made it, when and why, the exact requested time
range, each clip's time range, SHA-256 and size, and the recording segments it was cut from
with their positions in the recorder's tamper-evident hash chain. manifest.sig is an
Ed25519 signature over the exact bytes of manifest.json.

Signing key fingerprint (SHA-256 of the raw Ed25519 public key):

  {fingerprint}

Compare this fingerprint with the one the operator of the recording system gives you
through another channel (phone, letter, their published key). A package that verifies but
shows a different fingerprint was signed by someone else.

HOW TO VERIFY
-------------
With Vigil:

  python -m vigil.evidence.verify <this directory> --fingerprint "<fingerprint>"

  It prints the signing key's fingerprint and names every file that fails.

Without Vigil (OpenSSL 3.0 or newer, coreutils):

  1. Save the public key below as key.pem (it is also in manifest.json,
     "signing_key" -> "public_key", as raw base64):

{spki_pem(public_b64).rstrip()}

  2. Check the signature over the manifest:

       openssl pkeyutl -verify -pubin -inkey key.pem -rawin \\
           -in manifest.json -sigfile manifest.sig

     It must print "Signature Verified Successfully".

  3. Check every file listed under "files" in manifest.json:

       sha256sum {" ".join([*clip_names, README])}

     Each hash must equal the "sha256" given for that name, and the directory must hold
     no other files than those listed plus manifest.json and manifest.sig.

The fingerprint is the SHA-256 of the 32 raw key bytes:

     echo {public_b64} | base64 -d | sha256sum
"""
