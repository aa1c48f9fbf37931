"""A stand-in for a PyAV input container, backed by :class:`RtspClient`, so that
:class:`~vigil.ingest.reader.CameraReader` can read a camera natively with the code it uses
for FFmpeg.

It offers what the reader touches and nothing more: ``format.name``, ``streams.video`` /
``streams.audio``, ``demux(*streams)``, ``close()``; streams with ``type``, ``index``,
``time_base``, the frame-rate trio and a ``codec_context`` (name, extradata, size, sample
rate, channels, frame size); packets with ``stream``, ``pts``/``dts``, ``duration`` (None),
``is_keyframe``, ``time_base``, ``size``, ``bytes(packet)`` and ``has_sidedata()``. Codec
parameters come from the SDP: H.264/H.265 extradata is an avcC/hvcC record (4-byte
lengths, matching the length-prefixed packets) built from ``sprop-parameter-sets`` (or
``sprop-vps/sps/pps``), AAC extradata the AudioSpecificConfig of fmtp ``config``; the
picture size is read from the SPS.

These objects are *not* PyAV streams: ``OutputContainer.add_stream_from_template`` cannot
copy from them, so consumers must build output streams from codec parameters.

Use ``open_native()`` for a one-shot open. To be able to interrupt the open itself from
another thread, construct :class:`NativeInput`, publish it, then call :meth:`NativeInput.open`.
"""

from __future__ import annotations

import base64
import binascii
import logging
import traceback
from collections.abc import Iterator
from fractions import Fraction

from vigil.ingest.bitstream import ParameterSets
from vigil.ingest.errors import IngestError
from vigil.ingest.rtsp.client import WAIT, RtspClient, Track
from vigil.ingest.rtsp.depacketize import AAC_FRAME_SAMPLES, aac_config
from vigil.ingest.rtsp.sdp import MediaDescription
from vigil.ingest.rtsp.stats import RtspStats
from vigil.util.redact import redact_text

log = logging.getLogger("vigil.ingest.rtsp")


class NativeCodecContext:
    """The codec parameters of one stream (the subset of ``av.CodecContext`` used)."""

    __slots__ = ("channels", "extradata", "frame_size", "height", "name", "sample_rate", "width")

    def __init__(
        self,
        name: str,
        *,
        extradata: bytes | None = None,
        width: int = 0,
        height: int = 0,
        sample_rate: int = 0,
        channels: int = 0,
        frame_size: int = 0,
    ) -> None:
        self.name = name
        self.extradata = extradata
        self.width = width
        self.height = height
        self.sample_rate = sample_rate
        self.channels = channels
        self.frame_size = frame_size

    def __repr__(self) -> str:
        return f"<NativeCodecContext {self.name}>"


class NativeStream:
    """One set-up medium, looking like a PyAV input stream to the reader."""

    __slots__ = ("average_rate", "codec_context", "index", "time_base", "type")

    def __init__(
        self,
        index: int,
        kind: str,
        time_base: Fraction,
        codec_context: NativeCodecContext,
        rate: Fraction | None = None,
    ) -> None:
        self.index = index
        self.type = kind
        self.time_base = time_base
        self.codec_context = codec_context
        self.average_rate = rate

    @property
    def guessed_rate(self) -> Fraction | None:
        return self.average_rate

    @property
    def base_rate(self) -> Fraction | None:
        return self.average_rate

    @property
    def codec(self) -> NativeCodecContext:
        return self.codec_context

    def __repr__(self) -> str:
        return f"<NativeStream #{self.index} {self.type}/{self.codec_context.name}>"


class NativePacket:
    """One access unit. ``pts == dts`` (RTP timestamp, see ``depacketize``)."""

    __slots__ = ("_data", "dts", "is_keyframe", "pts", "stream")

    duration: int | None = None

    def __init__(self, stream: NativeStream, data: bytes, ts: int, keyframe: bool) -> None:
        self.stream = stream
        self._data = data
        self.pts = ts
        self.dts = ts
        self.is_keyframe = keyframe

    @property
    def time_base(self) -> Fraction:
        return self.stream.time_base

    @property
    def size(self) -> int:
        return len(self._data)

    def __bytes__(self) -> bytes:
        return self._data

    def has_sidedata(self, name: str) -> bool:
        return False

    def __repr__(self) -> str:
        return (
            f"<NativePacket #{self.stream.index} pts={self.pts} size={len(self._data)}"
            f"{' key' if self.is_keyframe else ''}>"
        )


class Wait:
    """Yielded by a cooperative :meth:`NativeInput.demux`: nothing to read now; resume
    when the socket is readable, or at the monotonic time ``until`` at the latest."""

    __slots__ = ("until",)

    def __init__(self) -> None:
        self.until = 0.0

    def __repr__(self) -> str:
        return f"<Wait until={self.until:.3f}>"


class NativeStreams:
    """``container.streams``: the video and audio lists, iterable as one sequence."""

    def __init__(self) -> None:
        self.video: list[NativeStream] = []
        self.audio: list[NativeStream] = []

    def __iter__(self) -> Iterator[NativeStream]:
        return iter(sorted(self.video + self.audio, key=lambda s: s.index))

    def __len__(self) -> int:
        return len(self.video) + len(self.audio)


class NativeFormat:
    name = "rtsp"
    long_name = "RTSP input (Vigil native client)"


class NativeInput:
    """A native RTSP input. ``interrupt()`` may be called from any thread at any time."""

    format = NativeFormat()

    def __init__(
        self,
        url_with_credentials: str,
        display: str,
        *,
        open_timeout: float,
        stall_timeout: float,
        audio: bool = True,
    ) -> None:
        self._client = RtspClient(
            url_with_credentials,
            display=display,
            open_timeout=open_timeout,
            stall_timeout=stall_timeout,
            audio=audio,
        )
        self.display = self._client.source
        self.streams = NativeStreams()

    def __repr__(self) -> str:
        return f"<NativeInput {self.display}>"

    @property
    def stats(self) -> RtspStats:
        return self._client.stats

    def open(self) -> NativeInput:
        """Run the RTSP handshake. On failure the connection is closed and an
        :class:`IngestError` raised (a bug is reported as kind ``error``, logged redacted)."""
        try:
            self._client.open()
        except IngestError:
            self._client.close()
            raise
        except Exception as exc:
            self._client.close()
            log.error(
                "%s: native RTSP open failed: %s",
                self.display,
                redact_text("".join(traceback.format_exception(exc)).rstrip()),
            )
            raise IngestError(
                "error", f"internal error: {type(exc).__name__}", source=self.display
            ) from None
        for track in self._client.tracks:
            stream = _stream_for(track)
            (self.streams.video if stream.type == "video" else self.streams.audio).append(stream)
        return self

    def demux(
        self, *streams: NativeStream, cooperative: bool = False
    ) -> Iterator[NativePacket | Wait]:
        """Packets of ``streams`` (all streams when none given) until the connection ends
        with an :class:`IngestError` (``eof``, ``stalled``, ``stopped``, ...).

        ``cooperative``: never block; yield a :class:`Wait` when no bytes are ready (see
        :meth:`RtspClient.units`); the caller resumes the iterator when :meth:`fileno` is
        readable or by ``Wait.until``."""
        wanted = streams or tuple(self.streams)
        by_index: dict[int, NativeStream] = {s.index: s for s in wanted}
        table: list[NativeStream | None] = [by_index.get(t.index) for t in self._client.tracks]
        client = self._client
        wait = Wait()
        for index, unit in client.units(sorted(by_index), cooperative=cooperative):
            if index == WAIT:
                wait.until = client.wake_at
                yield wait
                continue
            stream = table[index]
            if stream is not None:
                yield NativePacket(stream, unit.data, unit.ts, unit.keyframe)

    def fileno(self) -> int:
        """The connection's socket (after a successful :meth:`open`), for a selector."""
        return self._client.fileno()

    def interrupt(self) -> None:
        """Make a blocked open or read in the reading thread raise "stopped" promptly."""
        self._client.interrupt()

    def close(self) -> None:
        """TEARDOWN (best effort) and close the connection. Idempotent."""
        self._client.close()

    def __enter__(self) -> NativeInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_native(
    url_with_credentials: str,
    display: str,
    *,
    open_timeout: float,
    stall_timeout: float,
    audio: bool = True,
) -> NativeInput:
    """Open an ``rtsp://`` camera natively. Raises :class:`IngestError`, or
    :class:`~vigil.ingest.rtsp.errors.NativeUnsupported` when FFmpeg should read it."""
    native = NativeInput(
        url_with_credentials,
        display,
        open_timeout=open_timeout,
        stall_timeout=stall_timeout,
        audio=audio,
    )
    return native.open()


# --------------------------------------------------------------------------- parameters


def _stream_for(track: Track) -> NativeStream:
    media = track.media
    tb = Fraction(1, media.clock_rate)
    if media.kind == "video":
        extradata, nals = _parameter_sets(track.codec, media)
        width = height = 0
        if nals:
            info = ParameterSets.from_nals(track.codec, nals).sps_info()
            if info is not None:
                width, height = info.width, info.height
        ctx = NativeCodecContext(track.codec, extradata=extradata, width=width, height=height)
        return NativeStream(track.index, "video", tb, ctx, media.framerate)
    ctx = NativeCodecContext(
        track.codec,
        extradata=aac_config(media) if track.codec == "aac" else None,
        sample_rate=media.clock_rate,
        channels=media.channels,
        frame_size=AAC_FRAME_SAMPLES if track.codec == "aac" else 0,
    )
    return NativeStream(track.index, "audio", tb, ctx)


def _parameter_sets(codec: str, media: MediaDescription) -> tuple[bytes | None, list[bytes]]:
    """The avcC/hvcC record (4-byte lengths, like the packets) and the NAL units, from the
    fmtp sprop-* parameters (H.265: VPS, SPS, PPS, SEI); no record when they are
    incomplete."""
    keys = (
        ("sprop-parameter-sets",)
        if codec == "h264"
        else ("sprop-vps", "sprop-sps", "sprop-pps", "sprop-sei")
    )
    nals: list[bytes] = []
    for key in keys:
        for item in media.fmtp.get(key, "").split(","):
            item = item.strip()
            if not item:
                continue
            try:
                nal = base64.b64decode(item + "=" * (-len(item) % 4), validate=False)
            except (binascii.Error, ValueError):
                continue
            if nal:
                nals.append(nal)
    sets = ParameterSets.from_nals(codec, nals)
    if not sets.complete:  # the in-band sets of the first keyframe will say
        return None, nals
    return sets.record(4), nals
