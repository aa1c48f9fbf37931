"""What ingest hands to its consumers (recorder, live view, analytics).

A *session* is one uninterrupted run of packets with fixed codec parameters: a connection,
or the part of a connection between two codec changes. Consumers cut their output at session
boundaries (a new segment, a new init segment for viewers), which is how a camera that
reconnects, changes resolution or switches codec never produces a broken file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal, Protocol

StreamKind = Literal["video", "audio"]


@dataclass(frozen=True, slots=True)
class CodecParams:
    """Codec parameters of one elementary stream, enough to set up a stream-copy muxer."""

    kind: StreamKind
    codec: str  # FFmpeg codec name: h264, hevc, mjpeg, aac, pcm_mulaw, ...
    time_base: Fraction
    extradata: bytes | None = None
    width: int = 0
    height: int = 0
    sample_rate: int = 0
    channels: int = 0


@dataclass(slots=True)
class StreamSession:
    """One run of packets with fixed codec parameters.

    ``video_template``/``audio_template`` are the PyAV input streams (usable with
    ``OutputContainer.add_stream_from_template``); ``video``/``audio`` hold the
    parameters actually in force, which take precedence when in-band parameter sets changed
    during the connection.
    """

    camera: str
    session_id: int  # strictly increasing per camera within a process
    video: CodecParams
    audio: CodecParams | None
    started_wall_us: int
    video_template: Any = None
    audio_template: Any = None
    source: str = ""  # redacted URL or file name, for messages


@dataclass(slots=True)
class TimedPacket:
    """A demuxed, never-decoded packet with its times resolved.

    ``pts_us``/``dts_us`` are on a per-session media timeline that starts near 0 and is
    strictly monotonic in dts per stream (ingest repairs camera glitches); ``wall_us`` is
    the wall-clock time of ``pts_us`` in microseconds since the Unix epoch, derived from the
    recorder's own clock, never the camera's.
    """

    kind: StreamKind
    data: bytes
    pts_us: int
    dts_us: int
    duration_us: int
    wall_us: int
    keyframe: bool
    packet: Any = field(default=None, repr=False)  # the original av.Packet, if any

    @property
    def size(self) -> int:
        return len(self.data)


class PacketSink(Protocol):
    """A consumer of one camera's stream. Calls come from the camera's ingest thread, in
    order. The recorder is called synchronously; slower consumers must queue with a bound
    and drop, never block (recording never waits on them)."""

    def session_started(self, session: StreamSession) -> None: ...

    def packet(self, session: StreamSession, pkt: TimedPacket) -> None: ...

    def session_ended(self, session: StreamSession, reason: str) -> None: ...
