"""Building RTP packets and payloads by hand, independently of the code under test."""

from __future__ import annotations

import struct


def rtp(
    seq: int,
    ts: int,
    payload: bytes,
    *,
    marker: bool = False,
    pt: int = 96,
    ssrc: int = 0x11223344,
    csrc: int = 0,
    extension: bytes | None = None,
    padding: int = 0,
) -> bytes:
    """One RTP packet (RFC 3550). ``extension`` is the extension body (multiple of 4)."""
    b0 = 0x80 | (0x20 if padding else 0) | (0x10 if extension is not None else 0) | csrc
    out = struct.pack(
        ">BBHII", b0, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc
    )
    out += b"\x01\x02\x03\x04" * csrc
    if extension is not None:
        assert len(extension) % 4 == 0
        out += struct.pack(">HH", 0xBEDE, len(extension) // 4) + extension
    out += payload
    if padding:
        out += b"\x00" * (padding - 1) + bytes([padding])
    return out


def interleaved(channel: int, packet: bytes) -> bytes:
    """``$`` framing of RTP over the RTSP connection (RFC 2326 10.12)."""
    return b"$" + bytes([channel]) + struct.pack(">H", len(packet)) + packet


def fu_a(nal: bytes, chunk: int) -> list[bytes]:
    """H.264 FU-A payloads of ``nal`` (header byte included), ``chunk`` bytes each."""
    header, body = nal[0], nal[1:]
    indicator = (header & 0xE0) | 28
    parts = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    out = []
    for i, part in enumerate(parts):
        fu = header & 0x1F
        if i == 0:
            fu |= 0x80
        if i == len(parts) - 1:
            fu |= 0x40
        out.append(bytes([indicator, fu]) + part)
    return out


def stap_a(nals: list[bytes]) -> bytes:
    nri = max(n[0] & 0x60 for n in nals)
    return bytes([nri | 24]) + b"".join(struct.pack(">H", len(n)) + n for n in nals)


def h265_nal(ntype: int, body: bytes) -> bytes:
    """An H.265 NAL unit: 2-byte header (layer 0, tid 1) + body."""
    return bytes([(ntype << 1) & 0x7E, 1]) + body


def h265_fu(nal: bytes, chunk: int, *, donl: int | None = None) -> list[bytes]:
    ntype = (nal[0] >> 1) & 0x3F
    payload_hdr = bytes([(nal[0] & 0x81) | (49 << 1), nal[1]])
    body = nal[2:]
    parts = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    out = []
    for i, part in enumerate(parts):
        fu = ntype
        if i == 0:
            fu |= 0x80
        if i == len(parts) - 1:
            fu |= 0x40
        d = struct.pack(">H", donl) if donl is not None and i == 0 else b""
        out.append(payload_hdr + bytes([fu]) + d + part)
    return out


def h265_ap(nals: list[bytes], *, donl: int | None = None) -> bytes:
    out = bytes([48 << 1, 1])
    for i, n in enumerate(nals):
        if donl is not None:
            out += struct.pack(">H", donl) if i == 0 else b"\x00"  # DONL, then DOND
        out += struct.pack(">H", len(n)) + n
    return out


def aac_hbr(aus: list[bytes], *, sizes: list[int] | None = None) -> bytes:
    """RFC 3640 AAC-hbr payload: 16-bit AU headers (13-bit size, 3-bit index/delta 0)."""
    sizes = sizes if sizes is not None else [len(a) for a in aus]
    headers = b"".join(struct.pack(">H", s << 3) for s in sizes)
    return struct.pack(">H", 16 * len(sizes)) + headers + b"".join(aus)
