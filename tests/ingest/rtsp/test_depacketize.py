"""RTP payloads to access units: H.264, H.265, AAC, G.711; losses, limits, timestamps."""

from __future__ import annotations

import pytest

from tests.ingest.rtsp.rtp import aac_hbr, fu_a, h265_ap, h265_fu, h265_nal, rtp, stap_a
from vigil.ingest.rtsp import depacketize
from vigil.ingest.rtsp.depacketize import (
    AacDepacketizer,
    AccessUnit,
    H264Depacketizer,
    H265Depacketizer,
    RawDepacketizer,
    aac_config,
    codec_name,
    for_media,
)
from vigil.ingest.rtsp.sdp import parse_sdp


def lp(*nals: bytes) -> bytes:
    """NAL units with 4-byte length prefixes, the framing the depacketizers emit."""
    return b"".join(len(n).to_bytes(4, "big") + n for n in nals)


SPS = bytes([0x67, 0x4D, 0x40, 0x0D]) + b"\xda" * 10
PPS = bytes([0x68, 0xEF, 0x3C, 0x80])
SEI = bytes([0x06, 0x05, 0x01, 0x80])


def idr(n: int = 100, fill: int = 0x11) -> bytes:
    return bytes([0x65, 0x88]) + bytes([fill]) * n  # first_mb_in_slice = 0


def slice_(n: int = 50, fill: int = 0x22, first_mb: bool = True) -> bytes:
    return bytes([0x41, 0x9A if first_mb else 0x1A]) + bytes([fill]) * n


def feed(dep: depacketize.Depacketizer, packets: list[bytes]) -> list[AccessUnit]:
    out: list[AccessUnit] = []
    for p in packets:
        out += dep.push_packet(p)
    return out


# --------------------------------------------------------------------------- H.264


def test_h264_single_nal_units_and_keyframes() -> None:
    dep = H264Depacketizer(90000)
    units = feed(
        dep,
        [
            rtp(1, 1000, SPS),
            rtp(2, 1000, PPS),
            rtp(3, 1000, idr(), marker=True),
            rtp(4, 4000, slice_(), marker=True),
        ],
    )
    assert [(u.ts, u.keyframe) for u in units] == [(0, True), (3000, False)]
    assert units[0].data == lp(SPS, PPS, idr())
    assert units[1].data == lp(slice_())
    assert dep.stats.units == 2 and dep.stats.dropped_units == 0


def test_h264_stap_a_and_fu_a() -> None:
    dep = H264Depacketizer(90000)
    big = idr(3000)
    frags = fu_a(big, 1000)
    assert len(frags) == 4
    packets = [rtp(10, 0, stap_a([SPS, PPS, SEI]))]
    packets += [rtp(11 + i, 0, f, marker=i == 3) for i, f in enumerate(frags)]
    (unit,) = feed(dep, packets)
    assert unit.keyframe
    assert unit.data == lp(SPS, PPS, SEI, big)  # NAL header rebuilt


def test_h264_timestamp_change_ends_a_unit_without_marker() -> None:
    dep = H264Depacketizer(90000)
    units = feed(dep, [rtp(1, 0, slice_(fill=1)), rtp(2, 3000, slice_(fill=2))])
    assert [u.data for u in units] == [lp(slice_(fill=1))]
    units = feed(dep, [rtp(3, 6000, slice_(fill=3), marker=True)])
    assert [(u.ts, u.data) for u in units] == [
        (3000, lp(slice_(fill=2))),
        (6000, lp(slice_(fill=3))),
    ]


def test_h264_parameter_sets_with_their_own_marker_join_the_next_unit() -> None:
    """Some cameras send SPS/PPS as a unit of their own: it is carried into the keyframe,
    not emitted as a frame without a picture."""
    dep = H264Depacketizer(90000)
    units = feed(
        dep,
        [
            rtp(1, 100, stap_a([SPS, PPS]), marker=True),
            rtp(2, 200, idr(), marker=True),
        ],
    )
    assert len(units) == 1
    assert units[0].data == lp(SPS, PPS, idr()) and units[0].keyframe
    assert units[0].ts == 100  # its own timestamp, relative to the first packet's


def test_h264_gap_inside_fu_drops_the_unit() -> None:
    dep = H264Depacketizer(90000)
    frags = fu_a(idr(3000), 1000)
    packets = [rtp(1, 0, frags[0]), rtp(3, 0, frags[2], marker=True)]  # seq 2 lost
    packets += [rtp(4, 3000, slice_(), marker=True)]
    units = feed(dep, packets)
    assert [u.ts for u in units] == [3000]
    assert dep.stats.lost_packets == 1 and dep.stats.dropped_units == 1


def test_h264_after_a_gap_only_a_provable_unit_start_is_kept() -> None:
    dep = H264Depacketizer(90000)
    feed(dep, [rtp(1, 0, idr(), marker=True)])
    # lost: seq 2 (the first slice of frame 3000); seq 3 is its second slice
    units = feed(dep, [rtp(3, 3000, slice_(first_mb=False), marker=True)])
    assert units == [] and dep.stats.dropped_units == 1
    # lost: seq 5; seq 6 starts the next picture (first_mb_in_slice = 0): kept
    units = feed(dep, [rtp(6, 9000, slice_(), marker=True)])
    assert [u.ts for u in units] == [9000]
    # a gap before a parameter set: kept
    units = feed(dep, [rtp(9, 12000, SPS), rtp(10, 12000, idr(), marker=True)])
    assert [u.keyframe for u in units] == [True]
    # a gap before an FU-A continuation: dropped
    frags = fu_a(idr(2000), 700)
    units = feed(dep, [rtp(13, 15000, frags[1]), rtp(14, 15000, frags[2], marker=True)])
    assert units == []
    assert dep.stats.lost_packets == 1 + 2 + 2 + 2  # 2; 4-5; 7-8; 11-12
    assert dep.stats.dropped_units == 2


def test_h264_first_packet_after_gap_continuing_the_damaged_unit() -> None:
    dep = H264Depacketizer(90000)
    packets = [
        rtp(1, 0, slice_(fill=1)),
        rtp(3, 0, slice_(fill=2, first_mb=False)),  # seq 2 lost: same picture
        rtp(4, 0, slice_(fill=3, first_mb=False), marker=True),
        rtp(5, 3000, slice_(fill=4), marker=True),  # clean: no check needed
    ]
    units = feed(dep, packets)
    assert [u.data for u in units] == [lp(slice_(fill=4))]
    assert dep.stats.dropped_units == 1


def test_h264_fu_without_start_or_end_is_dropped() -> None:
    dep = H264Depacketizer(90000)
    frags = fu_a(idr(2000), 700)
    # continuation first (no start seen), marker: dropped
    assert feed(dep, [rtp(1, 0, frags[1]), rtp(2, 0, frags[2], marker=True)]) == []
    # start, then the timestamp changes before the end fragment: dropped
    assert feed(dep, [rtp(3, 3000, frags[0]), rtp(4, 6000, slice_(), marker=True)])[0].ts == 6000
    assert dep.stats.dropped_units == 2 and dep.stats.lost_packets == 0


def test_h264_unsupported_packetizations_are_ignored_and_counted() -> None:
    dep = H264Depacketizer(90000)
    stap_b = bytes([0x19, 0, 0]) + b"\x00\x02\x41\x00"
    fu_b = bytes([0x1D, 0x85, 0, 0]) + b"\x00" * 8
    units = feed(dep, [rtp(1, 0, stap_b), rtp(2, 0, fu_b), rtp(3, 0, slice_(), marker=True)])
    assert [u.data for u in units] == [lp(slice_())]
    assert dep.stats.ignored_packets == 2


def test_h264_malformed_stap_drops_unit() -> None:
    dep = H264Depacketizer(90000)
    bad = stap_a([SPS, PPS])[:-2]  # last NAL shorter than its size field
    assert feed(dep, [rtp(1, 0, bad), rtp(2, 0, idr(), marker=True)]) == []
    assert dep.stats.dropped_units == 1


def test_rtp_header_csrc_extension_padding() -> None:
    dep = H264Depacketizer(90000)
    pkt = rtp(7, 0, slice_(), marker=True, csrc=2, extension=b"\xaa" * 8, padding=3)
    (unit,) = dep.push_packet(pkt)
    assert unit.data == lp(slice_())
    assert dep.push_packet(b"\x80\x60\x00") == [] and dep.stats.malformed_packets == 1
    bad_version = bytearray(rtp(8, 0, slice_(), marker=True))
    bad_version[0] = 0x40
    assert dep.push_packet(bytes(bad_version)) == [] and dep.stats.malformed_packets == 2


def test_oversized_unit_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(depacketize, "MAX_UNIT_BYTES", 2500)
    dep = H264Depacketizer(90000)
    frags = fu_a(idr(5000), 1000)
    packets = [rtp(i, 0, f, marker=i == len(frags) - 1) for i, f in enumerate(frags)]
    packets.append(rtp(len(frags), 3000, slice_(), marker=True))
    units = feed(dep, packets)
    assert [u.ts for u in units] == [3000]
    assert dep.stats.oversized_units == 1 and dep.stats.dropped_units == 0


# --------------------------------------------------------------------------- timestamps


def test_timestamps_relative_to_first_and_across_wraparound() -> None:
    dep = H264Depacketizer(90000)
    start = (1 << 32) - 7000
    packets = [rtp(i, start + i * 3000, slice_(), marker=True) for i in range(6)]
    units = feed(dep, packets)
    assert [u.ts for u in units] == [0, 3000, 6000, 9000, 12000, 15000]
    # a small step back is backwards, not a wrap
    (unit,) = feed(dep, [rtp(6, start + 5 * 3000 - 3000, slice_(), marker=True)])
    assert unit.ts == 12000


def test_sequence_wraparound_is_not_a_loss() -> None:
    dep = RawDepacketizer("pcm_mulaw", 8000)
    units = feed(dep, [rtp(s & 0xFFFF, s * 160, b"\xff" * 160, pt=0) for s in range(65534, 65538)])
    assert [u.ts for u in units] == [0, 160, 320, 480]
    assert dep.stats.lost_packets == 0 and dep.stats.out_of_order == 0
    feed(dep, [rtp(65000, 0, b"\xff", pt=0)])  # far backwards: a restart, not 65000 losses
    assert dep.stats.out_of_order == 1 and dep.stats.lost_packets == 0


# --------------------------------------------------------------------------- H.265

VPS = h265_nal(32, b"\x0c\x01\xff\xff")
HSPS = h265_nal(33, b"\x01\x01\x60")
HPPS = h265_nal(34, b"\xc1\x72")


def test_h265_single_ap_fu() -> None:
    dep = H265Depacketizer(90000)
    idr_nal = h265_nal(19, b"\xaf" + b"\x42" * 3000)  # IDR_W_RADL, first slice flag set
    frags = h265_fu(idr_nal, 1200)
    packets = [rtp(1, 0, h265_ap([VPS, HSPS, HPPS]))]
    packets += [rtp(2 + i, 0, f, marker=i == len(frags) - 1) for i, f in enumerate(frags)]
    trail = h265_nal(1, b"\x80" + b"\x01" * 40)
    packets.append(rtp(2 + len(frags), 3000, trail, marker=True))
    key, delta = feed(dep, packets)
    assert key.keyframe and key.data == lp(VPS, HSPS, HPPS, idr_nal)
    assert not delta.keyframe and delta.data == lp(trail) and delta.ts == 3000


@pytest.mark.parametrize("ntype", [16, 17, 18, 19, 20, 21])
def test_h265_irap_types_are_keyframes(ntype: int) -> None:
    dep = H265Depacketizer(90000)
    (unit,) = dep.push_packet(rtp(1, 0, h265_nal(ntype, b"\x80\x00"), marker=True))
    assert unit.keyframe


def test_h265_donl_is_skipped() -> None:
    dep = H265Depacketizer(90000, donl=True)
    cra = h265_nal(21, b"\x80" + b"\x33" * 900)
    frags = h265_fu(cra, 400, donl=7)
    single = h265_nal(1, b"\x80\x05")
    packets = [rtp(1, 0, h265_ap([VPS, HSPS, HPPS], donl=5))]
    packets += [rtp(2 + i, 0, f, marker=i == len(frags) - 1) for i, f in enumerate(frags)]
    packets.append(rtp(9, 3000, single[:2] + b"\x00\x09" + single[2:], marker=True))
    units = feed(dep, packets)
    assert units[0].data == lp(VPS, HSPS, HPPS, cra)
    assert units[1].data == lp(single)
    assert dep.stats.lost_packets == 9 - 2 - len(frags)


def test_h265_gap_then_continuation_is_dropped() -> None:
    dep = H265Depacketizer(90000)
    a = h265_nal(1, b"\x80" + b"\x01" * 10)
    b = h265_nal(1, b"\x00" + b"\x02" * 10)  # first_slice_segment_in_pic_flag = 0
    units = feed(dep, [rtp(1, 0, a, marker=True), rtp(3, 3000, b, marker=True)])
    assert [u.data for u in units] == [lp(a)]
    assert dep.stats.dropped_units == 1 and dep.stats.lost_packets == 1
    # after another gap, an aggregation packet of parameter sets proves a unit start
    idr_nal = h265_nal(19, b"\x80\x01")
    units = feed(
        dep, [rtp(5, 6000, h265_ap([VPS, HSPS, HPPS])), rtp(6, 6000, idr_nal, marker=True)]
    )
    assert [(u.ts, u.keyframe) for u in units] == [(6000, True)]
    assert dep.stats.dropped_units == 1 and dep.stats.lost_packets == 2


# --------------------------------------------------------------------------- audio


def test_aac_several_aus_per_packet() -> None:
    dep = AacDepacketizer(16000, {"sizelength": "13", "indexlength": "3", "indexdeltalength": "3"})
    aus = [b"\x21" * 50, b"\x22" * 70, b"\x23" * 20]
    units = feed(dep, [rtp(1, 5000, aac_hbr(aus), marker=True)])
    assert [(u.data, u.ts, u.keyframe) for u in units] == [
        (aus[0], 0, True), (aus[1], 1024, True), (aus[2], 2048, True),
    ]  # fmt: skip
    units = feed(dep, [rtp(2, 5000 + 3 * 1024, aac_hbr([b"\x24" * 9]), marker=True)])
    assert [(u.data, u.ts) for u in units] == [(b"\x24" * 9, 3072)]


def test_aac_fragmented_au_is_reassembled_and_loss_drops_it() -> None:
    dep = AacDepacketizer(48000, {"sizelength": "13", "indexlength": "3", "indexdeltalength": "3"})
    au = bytes(range(256)) * 12  # 3072 bytes
    p1 = aac_hbr([au[:1500]], sizes=[len(au)])
    p2 = aac_hbr([au[1500:]], sizes=[len(au)])
    assert feed(dep, [rtp(1, 0, p1)]) == []
    (unit,) = feed(dep, [rtp(2, 0, p2, marker=True)])
    assert unit.data == au
    # the same, with the second fragment's predecessor lost
    feed(dep, [rtp(3, 1024, p1)])
    assert feed(dep, [rtp(5, 1024, p2, marker=True)]) == []
    assert dep.stats.dropped_units == 1 and dep.stats.malformed_packets == 1


def test_aac_generic_au_header_fields() -> None:
    """CTS/DTS flags and random-access bits are skipped by their declared widths."""
    fmtp = {
        "sizelength": "13", "indexlength": "3", "indexdeltalength": "3",
        "ctsdeltalength": "4", "dtsdeltalength": "4", "randomaccessindication": "1",
    }  # fmt: skip
    dep = AacDepacketizer(8000, fmtp)
    # two headers: size(13) index(3) ctsflag(1) dtsflag(1) rap(1) = 19 bits each, with the
    # second one carrying a CTS delta (flag 1 + 4 bits): 19 + 23 = 42 bits
    bits = f"{5:013b}000" + "0" + "0" + "1"
    bits += f"{3:013b}000" + "1" + "0110" + "0" + "1"
    header_len = len(bits)
    bits += "0" * (-len(bits) % 8)
    header = int(bits, 2).to_bytes(len(bits) // 8, "big")
    payload = header_len.to_bytes(2, "big") + header + b"AAAAA" + b"BBB"
    units = feed(dep, [rtp(1, 0, payload, marker=True)])
    assert [u.data for u in units] == [b"AAAAA", b"BBB"]


def test_pcm_passthrough() -> None:
    dep = RawDepacketizer("pcm_alaw", 8000)
    units = feed(dep, [rtp(1, 80, b"\xd5" * 160, pt=8), rtp(2, 240, b"\x55" * 160, pt=8)])
    assert [(u.data[:1], u.ts, u.keyframe) for u in units] == [
        (b"\xd5", 0, True),
        (b"\x55", 160, True),
    ]


# --------------------------------------------------------------------------- factory


def _media(text: str) -> depacketize.MediaDescription:
    return parse_sdp("v=0\n" + text, request_url="rtsp://cam/").media[0]


def test_factory_and_codec_names() -> None:
    h264 = _media("m=video 0 RTP/AVP 96\na=rtpmap:96 H264/90000\n")
    h265 = _media("m=video 0 RTP/AVP 96\na=rtpmap:96 H265/90000\na=fmtp:96 sprop-max-don-diff=2\n")
    aac = _media(
        "m=audio 0 RTP/AVP 97\na=rtpmap:97 mpeg4-generic/16000/1\n"
        "a=fmtp:97 mode=AAC-hbr;config=1408;sizelength=13;indexlength=3;indexdeltalength=3\n"
    )
    pcmu = _media("m=audio 0 RTP/AVP 0\n")
    mjpeg = _media("m=video 0 RTP/AVP 26\n")
    latm = _media("m=audio 0 RTP/AVP 98\na=rtpmap:98 MP4A-LATM/16000\n")
    celp = _media("m=audio 0 RTP/AVP 97\na=rtpmap:97 mpeg4-generic/8000\na=fmtp:97 mode=CELP-cbr\n")
    assert [codec_name(m) for m in (h264, h265, aac, pcmu, mjpeg, latm, celp)] == [
        "h264", "hevc", "aac", "pcm_mulaw", None, None, None,
    ]  # fmt: skip
    assert isinstance(for_media(h264), H264Depacketizer)
    dep = for_media(h265)
    assert isinstance(dep, H265Depacketizer) and dep._donl == 2
    assert isinstance(for_media(aac), AacDepacketizer)
    assert for_media(pcmu).codec == "pcm_mulaw"
    assert aac_config(aac) == b"\x14\x08"
    for m in (mjpeg, latm):
        with pytest.raises(ValueError):
            for_media(m)
