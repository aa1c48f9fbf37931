"""HTTP range requests (RFC 9110 §14) for files: what lets a browser seek in a
progressive MP4 without downloading it first.

Behaviour, chosen to be predictable rather than clever:

* No ``Range``, a unit other than ``bytes``, a syntactically invalid range set, more than
  ``MAX_RANGES`` ranges, or an ``If-Range`` that does not match the current ETag: the
  whole file, ``200`` (the RFC lets a server ignore such a header; refusing it would break
  players that send odd but harmless ranges).
* One satisfiable range (after merging overlapping and adjacent ones): ``206`` with
  ``Content-Range: bytes first-last/size``. Ranges reaching past the end are clipped.
* Several: ``206`` ``multipart/byteranges``.
* None satisfiable (every range starts at or after the end, or ``bytes=-0``): ``416``
  with ``Content-Range: bytes */size`` and the API's JSON error body.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path

from starlette.responses import Response, StreamingResponse

from vigil.api.errors import error_response

MAX_RANGES = 16
CHUNK = 256 * 1024
_SPEC = re.compile(r"^(\d*)-(\d*)$")


class Unsatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """Byte ranges ``[(start, end_exclusive), ...]`` to send, sorted and merged; None to
    send the whole file; raises ``Unsatisfiable`` for a 416."""
    if header is None:
        return None
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    parts = [p.strip() for p in spec.split(",")]
    if not parts or len(parts) > MAX_RANGES or any(not p for p in parts):
        return None
    ranges: list[tuple[int, int]] = []
    for p in parts:
        m = _SPEC.match(p)
        if m is None or (m.group(1) == "" and m.group(2) == ""):
            return None  # invalid syntax: ignore the header
        first, last = m.group(1), m.group(2)
        if first == "":  # suffix: the last N bytes
            n = int(last)
            if n > 0 and size > 0:
                ranges.append((max(0, size - n), size))
            continue
        a = int(first)
        if last != "" and int(last) < a:
            return None  # "5-3" is invalid, not unsatisfiable
        b = size if last == "" else min(int(last) + 1, size)
        if a < size:
            ranges.append((a, b))
    if not ranges:
        raise Unsatisfiable
    ranges.sort()
    merged = [ranges[0]]
    for a, b in ranges[1:]:
        pa, pb = merged[-1]
        if a <= pb:  # overlapping or adjacent
            merged[-1] = (pa, max(pb, b))
        else:
            merged.append((a, b))
    return merged


def _read(path: Path, ranges: list[tuple[int, int]]) -> Iterator[bytes]:
    with open(path, "rb") as f:
        for a, b in ranges:
            f.seek(a)
            left = b - a
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    return  # file shrank under us: the client sees a short body
                left -= len(chunk)
                yield chunk


def _multipart(
    path: Path, ranges: list[tuple[int, int]], size: int, media_type: str, boundary: str
) -> tuple[int, Iterator[bytes]]:
    heads = [
        (
            f"\r\n--{boundary}\r\nContent-Type: {media_type}\r\n"
            f"Content-Range: bytes {a}-{b - 1}/{size}\r\n\r\n"
        ).encode()
        for a, b in ranges
    ]
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = sum(len(h) for h in heads) + sum(b - a for a, b in ranges) + len(tail)

    def body() -> Iterator[bytes]:
        for h, r in zip(heads, ranges, strict=True):
            yield h
            yield from _read(path, [r])
        yield tail

    return length, body()


def file_response(
    path: Path,
    request_headers: Mapping[str, str],
    *,
    media_type: str,
    etag: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Serve ``path`` honouring ``Range``/``If-Range`` (see module docs)."""
    size = path.stat().st_size
    base = {"Accept-Ranges": "bytes", "ETag": etag, **(headers or {})}
    rng = request_headers.get("range")
    if_range = request_headers.get("if-range")
    if if_range is not None and if_range.strip() != etag:
        rng = None
    try:
        ranges = parse_range(rng, size)
    except Unsatisfiable:
        return error_response(
            416,
            "range_not_satisfiable",
            f"the requested range is outside the {size}-byte resource",
            {"size": size},
            headers={**base, "Content-Range": f"bytes */{size}"},
        )
    if ranges is None:
        return StreamingResponse(
            _read(path, [(0, size)]),
            status_code=200,
            media_type=media_type,
            headers={**base, "Content-Length": str(size)},
        )
    if len(ranges) == 1:
        a, b = ranges[0]
        return StreamingResponse(
            _read(path, ranges),
            status_code=206,
            media_type=media_type,
            headers={
                **base,
                "Content-Length": str(b - a),
                "Content-Range": f"bytes {a}-{b - 1}/{size}",
            },
        )
    boundary = secrets.token_hex(12)
    length, body = _multipart(path, ranges, size, media_type, boundary)
    return StreamingResponse(
        body,
        status_code=206,
        media_type=f"multipart/byteranges; boundary={boundary}",
        headers={**base, "Content-Length": str(length)},
    )
