"""RTP payloads -> access units: H.264 (RFC 6184), H.265 (RFC 7798), AAC (RFC 3640) and
G.711 (PCMU/PCMA, RFC 3551).

What comes out: one video access unit per packet, every NAL unit behind a **4-byte
length prefix** (the framing MP4 stores, described by the avcC/hvcC record that
``container`` makes from the SDP's parameter sets), so the recorder writes samples without
scanning them for start codes; one raw AAC frame (no ADTS header) per audio packet; G.711
payloads as they are. (FFmpeg's RTSP demuxer gives Annex B instead; Vigil downstream
takes both, as it does for MP4 files.) A fragmented NAL unit gets a placeholder prefix
that is filled in when its last fragment arrives.

Access units. A video access unit ends on the RTP marker bit or when the RTP timestamp
changes. A unit made only of non-VCL NAL units (parameter sets, SEI, delimiters sent with
their own timestamp or marker, as some cameras do) is not emitted on its own: it is
prepended to the next unit, so the keyframe carries its SPS/PPS like FFmpeg's parser makes
it. Keyframes: H.264 units containing an IDR slice (type 5), H.265 units containing an IRAP
picture (types 16-21).

Damage. A unit is never emitted incomplete. On a sequence-number gap the unit in progress
is dropped, and so is the unit of the first packet after the gap unless that packet
provably starts an access unit (a parameter set, delimiter or SEI, or the first slice of a
picture); a fragmented NAL unit missing its start or end, or a malformed aggregation
packet, drops its unit too. Units over :data:`MAX_UNIT_BYTES` are dropped. Everything is
counted in :class:`~vigil.ingest.rtsp.stats.RtspStats`.

Timestamps. The 32-bit RTP timestamp is extended to 64 bits (a step forward by less than
half the range is forward, so wrap-around is continuous) and made relative to the stream's
first packet, which gets 0. pts = dts = that value in units of 1/clock rate: cameras rarely
send B-frames, and Vigil's session clock repairs non-monotonic dts.

Speed. :meth:`Depacketizer.push` runs once per RTP packet, thousands of times a second per
process, so the per-packet path uses a single ``struct`` call for the header, memoryview
slices appended straight into one ``bytearray`` per unit, and no per-packet objects beyond
those slices. Per-unit work (timestamp extension, the final ``bytes`` copy) happens once
per frame.
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Mapping

from vigil.ingest.rtsp.sdp import MediaDescription
from vigil.ingest.rtsp.stats import RtspStats

START_CODE = b"\x00\x00\x00\x01"
_NO_LENGTH = b"\x00\x00\x00\x00"  # placeholder until a fragmented NAL unit ends
MAX_UNIT_BYTES = 16 << 20
# a run of non-VCL NAL units carried to the next unit: parameter sets and SEI, kilobytes
MAX_CARRY_BYTES = 1 << 20
AAC_FRAME_SAMPLES = 1024

_RTP_HEADER = struct.Struct(">BBHI")
_RTP_FAST = struct.Struct(">BHI")  # marker/type, sequence, timestamp

# _broken states of a video unit in progress
_OK, _DAMAGED, _OVERSIZED = 0, 1, 2

Buffer = memoryview


class AccessUnit:
    """One demuxed frame: ``data`` (Annex B for video), ``ts`` (extended RTP timestamp
    relative to the stream's first packet, in 1/clock-rate units), ``keyframe``."""

    __slots__ = ("data", "keyframe", "ts")

    def __init__(self, data: bytes, ts: int, keyframe: bool) -> None:
        self.data = data
        self.ts = ts
        self.keyframe = keyframe

    def __repr__(self) -> str:
        return f"AccessUnit(ts={self.ts}, size={len(self.data)}, keyframe={self.keyframe})"


class Depacketizer:
    """RTP header parsing, sequence tracking and timestamp extension; subclasses turn
    payloads into units appended to :attr:`units` (the caller takes and clears them)."""

    codec = ""

    def __init__(self, clock_rate: int, stats: RtspStats | None = None) -> None:
        if clock_rate <= 0:
            raise ValueError("clock rate must be positive")
        self.clock_rate = clock_rate
        self.stats = stats if stats is not None else RtspStats()
        self.units: list[AccessUnit] = []
        self._next_seq = -1
        self._last_ts32 = -1
        self._ext_ts = 0

    def push(self, data: Buffer, start: int, end: int) -> None:
        """Consume the RTP packet ``data[start:end]``."""
        if end - start < 12:
            self.stats.malformed_packets += 1
            return
        b0, b1, seq, ts = _RTP_HEADER.unpack_from(data, start)
        q = start + 12 + ((b0 & 0x0F) << 2)
        if b0 & 0x10:  # header extension
            if b0 & 0xC0 != 0x80 or q + 4 > end:
                self.stats.malformed_packets += 1
                return
            q += 4 + (((data[q + 2] << 8) | data[q + 3]) << 2)
        if b0 & 0x20:  # padding: the last byte says how much
            end -= data[end - 1]
        if b0 & 0xC0 != 0x80 or q > end:
            self.stats.malformed_packets += 1
            return
        if seq != self._next_seq and self._next_seq >= 0:
            gap = (seq - self._next_seq) & 0xFFFF
            if gap < 0x8000:
                self.stats.lost_packets += gap
            else:
                self.stats.out_of_order += 1
            self._discontinuity()
        self._next_seq = (seq + 1) & 0xFFFF
        self._payload(data, q, end, ts, b1 & 0x80)

    def push_packet(self, packet: bytes) -> list[AccessUnit]:
        """Convenience for tests and tools: push one packet, return and clear the units."""
        self.push(memoryview(packet), 0, len(packet))
        out = self.units
        self.units = []
        return out

    def extend(self, ts32: int) -> int:
        """The 64-bit timestamp of ``ts32`` relative to the first one extended (module
        doc). Call once per unit, in arrival order."""
        last = self._last_ts32
        self._last_ts32 = ts32
        if last < 0:
            return 0
        delta = (ts32 - last) & 0xFFFFFFFF
        if delta & 0x80000000:
            delta -= 0x100000000
        self._ext_ts += delta
        return self._ext_ts

    def _payload(self, data: Buffer, q: int, end: int, ts: int, marker: int) -> None:
        raise NotImplementedError

    def _discontinuity(self) -> None:
        """Packets were lost (or came out of order) just before the current one."""


# --------------------------------------------------------------------------- video


class _VideoDepacketizer(Depacketizer):
    """Access-unit assembly shared by H.264 and H.265; subclasses parse the NAL layer."""

    def __init__(self, clock_rate: int, stats: RtspStats | None = None) -> None:
        super().__init__(clock_rate, stats)
        self._acc = bytearray()  # the unit in progress, length-prefixed NAL units
        self._ts = -1  # 32-bit timestamp of the unit in progress (or the last one)
        self._unit_ts = 0  # its extended timestamp
        self._open = False  # a unit is in progress (maybe being discarded)
        self._broken = _OK
        self._fu = False  # a fragmented NAL unit has started and not ended
        self._key = False
        self._vcl = False  # the unit has a slice (else it is carried to the next one)
        self._resync = False  # the next unit starts right after a discontinuity
        self._fu_at = 0  # where the length prefix of the fragmented NAL unit in progress is

    # Where a fragmentation unit's header is and its payload starts (after a plain 12-byte
    # RTP header): H.264 FU-A indicator + header, H.265 2-byte NAL header + FU header.
    _FU_HEADER = 13
    _FU_PAYLOAD = 14
    _FU_MASK = 0x1F  # bits of the first payload byte holding the NAL unit type...
    _FU_TYPE = 28  # ...and their value for a fragmentation unit (FU-A)

    def push(self, data: Buffer, start: int, end: int) -> None:
        """Like :meth:`Depacketizer.push`, with a fast path for the packets that make up
        most of a video frame: the middle fragments of a fragmented NAL unit (plain RTP
        header, the expected sequence number, the unit's timestamp, no marker). Those are
        appended in one step instead of three method calls."""
        if (
            self._fu
            and not self._broken
            and data[start] == 0x80
            and end - start > self._FU_PAYLOAD
            and not data[start + self._FU_HEADER] & 0xC0  # neither start nor end fragment
            and len(self._acc) < MAX_UNIT_BYTES
        ):
            b1, seq, ts = _RTP_FAST.unpack_from(data, start + 1)
            if (
                seq == self._next_seq
                and ts == self._ts
                and not b1 & 0x80
                and data[start + 12] & self._FU_MASK == self._FU_TYPE
            ):
                self._next_seq = (seq + 1) & 0xFFFF
                self._acc += data[start + self._FU_PAYLOAD : end]
                return
        Depacketizer.push(self, data, start, end)

    def _payload(self, data: Buffer, q: int, end: int, ts: int, marker: int) -> None:
        if ts != self._ts or not self._open:
            self._begin(data, q, end, ts)
        elif self._resync:  # the first packet after a gap continues a damaged unit
            self._resync = False
        if not self._broken:
            self._nal(data, q, end)
            if len(self._acc) > MAX_UNIT_BYTES:
                self.stats.oversized_units += 1
                self._acc.clear()
                self._broken = _OVERSIZED
        if marker:
            self._end()

    def _begin(self, data: Buffer, q: int, end: int, ts: int) -> None:
        if self._open:
            self._end()  # the timestamp changed: the previous unit is complete
        self._open = True
        self._ts = ts
        self._unit_ts = self.extend(ts)
        self._key = False
        if self._resync:
            self._resync = False
            self._broken = _OK if self._starts_unit(data, q, end) else _DAMAGED
        else:
            self._broken = _OK

    def _end(self) -> None:
        self._open = False
        acc = self._acc
        if self._broken or self._fu:
            if self._broken != _OVERSIZED:
                self.stats.dropped_units += 1
            acc.clear()
            self._broken = _OK
            self._fu = False
            self._vcl = False
            return
        if not self._vcl:  # only parameter sets/SEI so far: prefix of the next unit
            if len(acc) > MAX_CARRY_BYTES:
                acc.clear()
            return
        self.units.append(AccessUnit(bytes(acc), self._unit_ts, self._key))
        self.stats.units += 1
        acc.clear()
        self._vcl = False

    def _seal(self) -> None:
        """A fragmented NAL unit is complete: fill in its length prefix."""
        acc, at = self._acc, self._fu_at
        acc[at : at + 4] = (len(acc) - at - 4).to_bytes(4, "big")

    def _discontinuity(self) -> None:
        if self._open and not self._broken:
            self._broken = _DAMAGED  # discard the rest of it, count it when it ends
        self._resync = True

    def _nal(self, data: Buffer, q: int, end: int) -> None:
        raise NotImplementedError

    def _starts_unit(self, data: Buffer, q: int, end: int) -> bool:
        raise NotImplementedError


class H264Depacketizer(_VideoDepacketizer):
    """RFC 6184, packetization modes 0 and 1: single NAL unit (types 1-23), STAP-A (24),
    FU-A (28). STAP-B, MTAP16/24 and FU-B (interleaved mode) are ignored and counted."""

    codec = "h264"

    def _nal(self, data: Buffer, q: int, end: int) -> None:
        if q >= end:
            return  # empty payload (keep-alive padding some encoders send)
        acc = self._acc
        header = data[q]
        t = header & 0x1F
        if 1 <= t <= 23:
            if self._fu:
                self._broken = _DAMAGED  # a fragmented NAL unit never ended
                return
            acc += (end - q).to_bytes(4, "big")
            acc += data[q:end]
            if t <= 5:
                self._vcl = True
                if t == 5:
                    self._key = True
        elif t == 28:  # FU-A
            if end - q < 2:
                self._broken = _DAMAGED
                return
            fu = data[q + 1]
            if fu & 0x80:  # start fragment: rebuild the NAL header
                if self._fu:
                    self._broken = _DAMAGED
                    return
                nt = fu & 0x1F
                self._fu_at = len(acc)
                acc += _NO_LENGTH
                acc.append((header & 0xE0) | nt)
                acc += data[q + 2 : end]
                self._fu = not fu & 0x40
                if not self._fu:
                    self._seal()
                if 1 <= nt <= 5:
                    self._vcl = True
                    if nt == 5:
                        self._key = True
            elif self._fu:
                acc += data[q + 2 : end]
                if fu & 0x40:
                    self._fu = False
                    self._seal()
            else:
                self._broken = _DAMAGED  # continuation of a fragment we never saw start
        elif t == 24:  # STAP-A
            if self._fu:
                self._broken = _DAMAGED
                return
            r = q + 1
            while r < end:
                if r + 2 > end:
                    self._broken = _DAMAGED
                    return
                n = (data[r] << 8) | data[r + 1]
                r += 2
                if n == 0 or r + n > end:
                    self._broken = _DAMAGED
                    return
                nt = data[r] & 0x1F
                acc += n.to_bytes(4, "big")
                acc += data[r : r + n]
                r += n
                if 1 <= nt <= 5:
                    self._vcl = True
                    if nt == 5:
                        self._key = True
        else:  # 0, 25 STAP-B, 26/27 MTAP, 29 FU-B, 30/31 reserved
            self.stats.ignored_packets += 1

    def _starts_unit(self, data: Buffer, q: int, end: int) -> bool:
        """Whether the packet at ``q`` begins an access unit (H.264 7.4.1.2.3): an AUD,
        SPS, PPS, SEI or types 14-18, or a slice whose first_mb_in_slice is 0."""
        if q >= end:
            return False
        t = data[q] & 0x1F
        p = q + 1  # first byte after the NAL header
        if t == 28:
            if end - q < 3 or not data[q + 1] & 0x80:
                return False
            t, p = data[q + 1] & 0x1F, q + 2
        elif t == 24:
            if end - q < 5:
                return False
            t, p = data[q + 3] & 0x1F, q + 4
        if t in (6, 7, 8, 9) or 14 <= t <= 18:
            return True
        # first_mb_in_slice is ue(v): 0 is coded as a single 1 bit
        return 1 <= t <= 5 and p < end and bool(data[p] & 0x80)


class H265Depacketizer(_VideoDepacketizer):
    """RFC 7798: single NAL unit (types 0-47), aggregation packet (48), fragmentation unit
    (49). PACI (50) and reserved types are ignored and counted. With ``donl=True``
    (``sprop-max-don-diff`` > 0) the 2-byte DONL and 1-byte DOND fields are skipped:
    decoding order is transmission order over TCP from a single sender."""

    codec = "hevc"
    _FU_HEADER = 14
    _FU_PAYLOAD = 15  # a DONL, if any, is only in the start fragment
    _FU_MASK = 0x7E
    _FU_TYPE = 49 << 1

    def __init__(
        self, clock_rate: int, stats: RtspStats | None = None, *, donl: bool = False
    ) -> None:
        super().__init__(clock_rate, stats)
        self._donl = 2 if donl else 0

    def _nal(self, data: Buffer, q: int, end: int) -> None:
        if end - q < 3:
            if q < end:
                self.stats.malformed_packets += 1
            return
        acc = self._acc
        t = (data[q] >> 1) & 0x3F
        donl = self._donl
        if t < 48:
            if self._fu:
                self._broken = _DAMAGED
                return
            acc += (end - q - donl).to_bytes(4, "big")
            if donl:
                acc += data[q : q + 2]
                acc += data[q + 2 + donl : end]
            else:
                acc += data[q:end]
            if t < 32:
                self._vcl = True
                if 16 <= t <= 21:
                    self._key = True
        elif t == 49:  # FU
            fu = data[q + 2]
            nt = fu & 0x3F
            if fu & 0x80:
                if self._fu:
                    self._broken = _DAMAGED
                    return
                self._fu_at = len(acc)
                acc += _NO_LENGTH
                acc.append((data[q] & 0x81) | (nt << 1))
                acc.append(data[q + 1])
                acc += data[q + 3 + donl : end]
                self._fu = not fu & 0x40
                if not self._fu:
                    self._seal()
                if nt < 32:
                    self._vcl = True
                    if 16 <= nt <= 21:
                        self._key = True
            elif self._fu:
                acc += data[q + 3 : end]
                if fu & 0x40:
                    self._fu = False
                    self._seal()
            else:
                self._broken = _DAMAGED
        elif t == 48:  # AP
            if self._fu:
                self._broken = _DAMAGED
                return
            r = q + 2 + donl
            first = True
            while r < end:
                if not first and donl:
                    r += 1  # DOND
                first = False
                if r + 2 > end:
                    self._broken = _DAMAGED
                    return
                n = (data[r] << 8) | data[r + 1]
                r += 2
                if n < 2 or r + n > end:
                    self._broken = _DAMAGED
                    return
                nt = (data[r] >> 1) & 0x3F
                acc += n.to_bytes(4, "big")
                acc += data[r : r + n]
                r += n
                if nt < 32:
                    self._vcl = True
                    if 16 <= nt <= 21:
                        self._key = True
        else:  # 50 PACI, 51-63 reserved
            self.stats.ignored_packets += 1

    def _starts_unit(self, data: Buffer, q: int, end: int) -> bool:
        """Whether the packet at ``q`` begins an access unit (H.265 7.4.2.4.4): VPS, SPS,
        PPS, AUD, prefix SEI or types 41-44/48-55, or a slice segment with
        first_slice_segment_in_pic_flag set."""
        if end - q < 3:
            return False
        t = (data[q] >> 1) & 0x3F
        donl = self._donl
        p = q + 2 + donl  # first byte after the NAL header (and DONL)
        if t == 49:
            if not data[q + 2] & 0x80:
                return False
            t, p = data[q + 2] & 0x3F, q + 3 + donl
        elif t == 48:
            r = q + 2 + donl
            if r + 4 > end:
                return False
            t, p = (data[r + 2] >> 1) & 0x3F, r + 4
        if t in (32, 33, 34, 35, 39) or 41 <= t <= 44 or 48 <= t <= 55:
            return True
        return t < 32 and p < end and bool(data[p] & 0x80)


# --------------------------------------------------------------------------- audio


class AacDepacketizer(Depacketizer):
    """RFC 3640 ``mpeg4-generic`` AAC (modes AAC-hbr/AAC-lbr and generic layouts): the
    AU-headers section is read with the field widths from fmtp (sizelength, indexlength,
    indexdeltalength, ctsdeltalength, dtsdeltalength, randomaccessindication,
    streamstateindication, auxiliarydatasizelength, constantsize). Several AUs per packet
    get timestamps ``ts + i * constantduration`` (1024 samples when not given); an AU
    fragmented over several packets is reassembled. AU interleaving (non-zero index
    deltas) is not reordered: cameras do not interleave."""

    codec = "aac"

    def __init__(
        self, clock_rate: int, fmtp: Mapping[str, str], stats: RtspStats | None = None
    ) -> None:
        super().__init__(clock_rate, stats)

        def num(key: str, default: int = 0) -> int:
            try:
                return max(0, int(fmtp.get(key, default) or default))
            except ValueError:
                return default

        self._size_bits = num("sizelength")
        self._constant_size = num("constantsize")
        self._index_bits = num("indexlength")
        self._delta_bits = num("indexdeltalength")
        self._cts_bits = num("ctsdeltalength")
        self._dts_bits = num("dtsdeltalength")
        self._rap_bits = 1 if num("randomaccessindication") else 0
        self._state_bits = num("streamstateindication")
        self._aux_bits = num("auxiliarydatasizelength")
        self._duration = num("constantduration") or AAC_FRAME_SAMPLES
        if not self._size_bits and not self._constant_size:
            raise ValueError("AAC fmtp has neither sizelength nor constantsize")
        self._frag: bytearray | None = None
        self._frag_ts = 0
        self._frag_size = 0

    def _discontinuity(self) -> None:
        if self._frag is not None:
            self._frag = None
            self.stats.dropped_units += 1

    def _sizes(self, data: Buffer, q: int, end: int) -> tuple[list[int], int] | None:
        """AU sizes of the packet and the offset of the first AU's data, or None."""
        if not self._size_bits:  # constant size, no AU headers: as many AUs as fit
            n = (end - q) // self._constant_size
            return [self._constant_size] * n, q
        if end - q < 2:
            return None
        header_bits = (data[q] << 8) | data[q + 1]
        hs = q + 2
        p = hs + (header_bits + 7) // 8
        if p > end:
            return None
        total = (p - hs) * 8
        bits = int.from_bytes(data[hs:p], "big")
        pos = 0

        def read(n: int) -> int:
            nonlocal pos
            pos += n
            return (bits >> (total - pos)) & ((1 << n) - 1) if n else 0

        sizes: list[int] = []
        while header_bits - pos >= self._size_bits:
            sizes.append(read(self._size_bits))
            read(self._delta_bits if len(sizes) > 1 else self._index_bits)
            if self._cts_bits and read(1):
                read(self._cts_bits)
            if self._dts_bits and read(1):
                read(self._dts_bits)
            read(self._rap_bits)
            read(self._state_bits)
            if pos > header_bits:
                return None
        if self._aux_bits:
            if p + (self._aux_bits + 7) // 8 > end:
                return None
            aux_total = (min(end, p + 8) - p) * 8
            aux = int.from_bytes(data[p : min(end, p + 8)], "big")
            aux_size = (aux >> (aux_total - self._aux_bits)) & ((1 << self._aux_bits) - 1)
            p += (self._aux_bits + aux_size + 7) // 8
        return sizes, p

    def _payload(self, data: Buffer, q: int, end: int, ts: int, marker: int) -> None:
        parsed = self._sizes(data, q, end)
        if parsed is None:
            self.stats.malformed_packets += 1
            return
        sizes, p = parsed
        frag = self._frag
        if frag is not None:
            if len(sizes) == 1 and ts == self._frag_ts and sizes[0] == self._frag_size:
                frag += data[p:end]
                if len(frag) >= self._frag_size:
                    self._frag = None
                    self._emit(bytes(frag[: self._frag_size]), self.extend(ts))
                return
            self._frag = None  # a new AU before the fragmented one completed
            self.stats.dropped_units += 1
        base: int | None = None
        for i, size in enumerate(sizes):
            if p + size > end:
                if len(sizes) == 1 and not marker:  # first fragment of a large AU
                    self._frag = bytearray(data[p:end])
                    self._frag_ts, self._frag_size = ts, size
                else:
                    self.stats.malformed_packets += 1
                return
            if size:
                if base is None:
                    base = self.extend(ts)
                self._emit(bytes(data[p : p + size]), base + i * self._duration)
            p += size

    def _emit(self, data: bytes, ts: int) -> None:
        self.units.append(AccessUnit(data, ts, True))
        self.stats.units += 1


class RawDepacketizer(Depacketizer):
    """One unit per packet, payload as is: G.711 (PCMU/PCMA), where every packet is
    independently decodable and the timestamp counts samples."""

    def __init__(self, codec: str, clock_rate: int, stats: RtspStats | None = None) -> None:
        super().__init__(clock_rate, stats)
        self.codec = codec

    def _payload(self, data: Buffer, q: int, end: int, ts: int, marker: int) -> None:
        if q < end:
            self.units.append(AccessUnit(bytes(data[q:end]), self.extend(ts), True))
            self.stats.units += 1


# --------------------------------------------------------------------------- factory

VIDEO_CODECS = {"H264": "h264", "H265": "hevc"}
AUDIO_CODECS = {"MPEG4-GENERIC": "aac", "PCMU": "pcm_mulaw", "PCMA": "pcm_alaw"}


def codec_name(media: MediaDescription) -> str | None:
    """FFmpeg's name for the media's codec if this package can depacketize it."""
    enc = media.encoding
    if media.kind == "video":
        return VIDEO_CODECS.get(enc)
    if media.kind != "audio":
        return None
    if enc == "MPEG4-GENERIC":
        mode = media.fmtp.get("mode", "").lower()
        if mode in ("aac-hbr", "aac-lbr") or (not mode and "config" in media.fmtp):
            return "aac"
        return None
    return AUDIO_CODECS.get(enc)


def aac_config(media: MediaDescription) -> bytes | None:
    """The AudioSpecificConfig from fmtp ``config`` (hex), or None."""
    value = media.fmtp.get("config", "").strip()
    if not value:
        return None
    try:
        return binascii.unhexlify(value if len(value) % 2 == 0 else "0" + value)
    except (binascii.Error, ValueError):
        return None


def for_media(media: MediaDescription, stats: RtspStats | None = None) -> Depacketizer:
    """The depacketizer for ``media``; ValueError if its codec is not supported."""
    codec = codec_name(media)
    rate = media.clock_rate
    if codec is None or rate <= 0:
        raise ValueError(f"unsupported {media.kind} codec {media.encoding or '?'}")
    if codec == "h264":
        return H264Depacketizer(rate, stats)
    if codec == "hevc":
        try:
            donl = int(media.fmtp.get("sprop-max-don-diff", "0") or 0) > 0
        except ValueError:
            donl = False
        return H265Depacketizer(rate, stats, donl=donl)
    if codec == "aac":
        return AacDepacketizer(rate, media.fmtp, stats)
    return RawDepacketizer(codec, rate, stats)
