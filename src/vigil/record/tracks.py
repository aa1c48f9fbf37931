"""Deciding, once per session, how each elementary stream goes into MP4.

A ``TrackPlan`` fixes the sample-description extradata and the packet framing the muxer
will see for a whole session, so every packet can be normalised with a cheap check instead
of guessing per file. The rules (see ``bitstream`` for why they matter):

* H.264/H.265 with an avcC/hvcC record: packets are written length-prefixed; stray Annex B
  packets are converted.
* H.264/H.265 with Annex B parameter sets: packets are written Annex B and FFmpeg's mp4
  muxer converts both the parameter sets (to avcC/hvcC) and the packets. Stray
  length-prefixed packets are converted to Annex B first.
* No extradata at all: the parameter sets are taken from the first keyframe that carries
  them (Annex B, as above). Until then the session cannot start a segment.
* Without a PyAV template stream (cameras read by Vigil's own RTSP client) H.264/H.265
  and AAC sample entries are written by hand (``vigil.record.mp4init``) from the
  configuration record or the parameter sets, so a record keeps its length-prefixed
  framing. Other template-less video (MJPEG) gets ``add_mux_stream``, which cannot carry
  extradata; the muxer then extracts it from the first packet, so such a plan puts the
  parameter sets in front of each segment's first keyframe when it lacks them.
* AAC is written raw with its AudioSpecificConfig; ADTS headers are stripped and, when no
  config was given, one is built from the first ADTS header. Because a segment's header
  is written at its first video keyframe, possibly before any audio arrived, an AAC-LC
  config is assumed from the sample rate and channel count until that header is seen
  (``provisional``); if the header disagrees, the segment in progress drops its audio
  and the following segments use the right config. Codecs MP4 cannot hold
  (G.711 and other PCM flavours, G.726, ...) are dropped by the recorder with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from vigil.ingest.types import CodecParams
from vigil.record import bitstream as bs
from vigil.record.mp4init import HAND_CODECS_AUDIO, HAND_CODECS_VIDEO

Framing = Literal["annexb", "length", "raw"]

# Audio codecs that FFmpeg's mp4 muxer stores and common players play. Anything else is
# dropped rather than producing a file that half the players reject.
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "opus", "flac", "ac3", "eac3", "alac"})
MP4_VIDEO_CODECS = frozenset({"h264", "hevc", "mjpeg", "av1", "vp9", "mpeg4"})
DEFAULT_VIDEO_TIME_BASE = Fraction(1, 90000)


class PlanError(ValueError):
    """The stream cannot be recorded as MP4 (unsupported codec, unusable parameters)."""


@dataclass(frozen=True, slots=True)
class TrackPlan:
    """How one elementary stream of a session is written to every segment."""

    params: CodecParams
    template: Any  # PyAV stream to copy codec parameters from, or None
    extradata: bytes | None  # sample-description extradata given to the muxer
    framing: Framing
    length_size: int = 4
    # Annex B parameter sets to put in front of a segment's first packet when it has none
    # (only for the template-less path, where the muxer finds extradata in-band).
    inband_parameter_sets: bytes | None = None
    strip_adts: bool = False
    time_base: Fraction = DEFAULT_VIDEO_TIME_BASE
    # The AAC config was inferred from sample rate and channels (AAC-LC assumed) because
    # none was given; the first ADTS header confirms or corrects it.
    provisional: bool = False

    @property
    def codec(self) -> str:
        return self.params.codec

    def convert(self, data: bytes, first_in_segment: bool) -> bytes:
        """Normalise one packet's bytes to this plan's framing (no decoding)."""
        if self.strip_adts:
            return bs.strip_adts(data)
        if self.framing == "length":
            if bs.is_length_prefixed(data, self.length_size):
                return data
            nals, _ = bs.split_nals(data, self.length_size)
            return bs.join_length_prefixed(nals, self.length_size)
        if self.framing == "annexb":
            if not bs.starts_with_start_code(data) or bs.is_length_prefixed(data, 4):
                nals, _ = bs.split_nals(data, 4)
                data = bs.join_annexb(nals)
            if first_in_segment and self.inband_parameter_sets:
                nals = bs.split_annexb(data)
                if not bs.has_all_parameter_sets(self.codec, nals):
                    data = self.inband_parameter_sets + data
            return data
        return data


def _template_extradata(template: Any) -> bytes | None:
    ctx = getattr(template, "codec_context", None)
    data = getattr(ctx, "extradata", None) if ctx is not None else None
    return bytes(data) if data else None


def _time_base(params: CodecParams, default: Fraction) -> Fraction:
    tb = params.time_base
    if tb is None or tb <= 0 or tb > Fraction(1, 1):
        return default
    return Fraction(tb)


def plan_video(
    params: CodecParams, template: Any, keyframe: bytes | None = None
) -> TrackPlan | None:
    """The plan for a video stream, or None while it cannot be made yet (no parameter sets
    known: call again with the next keyframe's bytes).

    Raises ``PlanError`` for streams that cannot be stored at all.
    """
    codec = params.codec
    if codec not in MP4_VIDEO_CODECS:
        raise PlanError(f"video codec {codec!r} cannot be recorded to MP4")
    tb = _time_base(params, DEFAULT_VIDEO_TIME_BASE)
    extradata = params.extradata or _template_extradata(template)
    if codec not in bs.NAL_CODECS:
        if template is None and codec != "mjpeg":
            raise PlanError(f"video codec {codec!r} needs a template stream to be recorded")
        return TrackPlan(params, template, extradata, "raw", time_base=tb)

    if extradata and bs.is_config_record(extradata):
        try:
            length_size, ps = bs.parse_config_record(codec, extradata)
        except (ValueError, IndexError) as exc:
            raise PlanError(f"unreadable {codec} configuration record: {exc}") from exc
        if template is not None or codec in HAND_CODECS_VIDEO:
            # (without a template the init segment is written by hand from the record)
            return TrackPlan(params, template, extradata, "length", length_size, time_base=tb)
        annexb = bs.join_annexb(ps)
        return TrackPlan(params, None, annexb, "annexb", inband_parameter_sets=annexb,
                         time_base=tb)

    if extradata and bs.starts_with_start_code(extradata):
        ps = bs.parameter_sets(codec, bs.split_annexb(extradata))
        annexb = bs.join_annexb(ps) if ps else extradata
        return TrackPlan(params, template, annexb, "annexb",
                         inband_parameter_sets=None if template is not None else annexb,
                         time_base=tb)

    if keyframe is None:
        return None
    nals, _ = bs.split_nals(keyframe, 4)
    if not bs.has_all_parameter_sets(codec, nals):
        return None
    annexb = bs.join_annexb(bs.parameter_sets(codec, nals))
    return TrackPlan(params, template, annexb, "annexb",
                     inband_parameter_sets=None if template is not None else annexb,
                     time_base=tb)


def plan_audio(
    params: CodecParams, template: Any, first_packet: bytes | None = None
) -> TrackPlan | None:
    """The plan for an audio stream, or None while it cannot be made yet (AAC without a
    config: call again with the first packet). Raises ``PlanError`` when the stream
    cannot be stored (the recorder then records video only)."""
    codec = params.codec
    if codec not in MP4_AUDIO_CODECS:
        raise PlanError(f"audio codec {codec!r} cannot be stored in MP4")
    if template is None and codec not in HAND_CODECS_AUDIO:
        raise PlanError(
            f"audio codec {codec!r} without a template stream: its parameters cannot be "
            "given to the muxer"
        )
    default_tb = Fraction(1, params.sample_rate) if params.sample_rate > 0 else Fraction(1, 48000)
    tb = _time_base(params, default_tb)
    extradata = params.extradata or _template_extradata(template)
    if codec != "aac":
        return TrackPlan(params, template, extradata, "raw", time_base=tb)
    if extradata:
        return TrackPlan(params, template, extradata, "raw", strip_adts=True, time_base=tb)
    if first_packet is None:
        guess = bs.lc_asc(params.sample_rate, params.channels)
        if guess is None:
            return None
        return TrackPlan(params, template, guess, "raw", strip_adts=True, time_base=tb,
                         provisional=True)
    frames = list(bs.iter_adts_frames(first_packet))
    if not frames:
        raise PlanError("AAC without AudioSpecificConfig and without ADTS headers")
    asc = bs.adts_to_asc(frames[0][0])
    return TrackPlan(params, template, asc, "raw", strip_adts=True, time_base=tb)
