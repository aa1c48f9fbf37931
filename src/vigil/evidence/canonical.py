"""One unambiguous byte encoding for everything Vigil hashes or signs (except manifests, which
are signed as the exact bytes written).

Each message starts with a domain tag (so a chain link can never be replayed as a tombstone
signature, and vice versa), followed by each field as an 8-byte big-endian length and the
field's UTF-8 bytes. Integers are written in decimal, ``None`` as a distinct marker. Length
prefixes make the encoding injective: ``("ab", "c")`` and ``("a", "bc")`` differ, which a
separator-joined string would not guarantee for attacker-controlled text such as paths.

The format is deliberately trivial so an independent verifier can be written in a few lines
of any language; it is part of the on-disk format and must never change for a given tag.
"""

from __future__ import annotations

import hashlib

_NONE = b"\x00none"


def encode(tag: str, *fields: str | int | bytes | None) -> bytes:
    """Canonical bytes for ``fields`` under domain ``tag``."""
    out = bytearray()
    _put(out, tag.encode("utf-8"))
    for f in fields:
        if f is None:
            raw = _NONE
        elif isinstance(f, bool):  # bool is an int; refuse rather than guess "1"/"True"
            raise TypeError("booleans have no canonical encoding")
        elif isinstance(f, int):
            raw = str(f).encode("ascii")
        elif isinstance(f, str):
            raw = f.encode("utf-8")
        else:
            raw = bytes(f)
        _put(out, raw)
    return bytes(out)


def digest(tag: str, *fields: str | int | bytes | None) -> str:
    """Lower-case hex SHA-256 of :func:`encode`."""
    return hashlib.sha256(encode(tag, *fields)).hexdigest()


def _put(out: bytearray, raw: bytes) -> None:
    out += len(raw).to_bytes(8, "big")
    out += raw
