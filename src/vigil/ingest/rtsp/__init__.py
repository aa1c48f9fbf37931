"""Native RTSP-over-TCP client: reads cameras without FFmpeg's demuxer, at a fraction of its
CPU cost, and hands out packets the reader treats like FFmpeg's (video access units with
4-byte length-prefixed NAL units and an avcC/hvcC record, raw AAC frames, G.711 payloads;
pts = dts = RTP time).

Modules, one job each:

* :mod:`~vigil.ingest.rtsp.sdp` - the session description (media, codecs, control URLs);
* :mod:`~vigil.ingest.rtsp.auth` - Basic and Digest authentication;
* :mod:`~vigil.ingest.rtsp.message` - RTSP request/answer syntax, bounded;
* :mod:`~vigil.ingest.rtsp.depacketize` - RTP payloads to access units (H.264, H.265, AAC,
  G.711);
* :mod:`~vigil.ingest.rtsp.client` - the session over one socket: handshake, interleaved
  reading, keep-alive, interrupt, TEARDOWN;
* :mod:`~vigil.ingest.rtsp.netio` - interruptible connect, kernel receive timeouts;
* :mod:`~vigil.ingest.rtsp.container` - a PyAV-input-container look-alike for the reader;
* :mod:`~vigil.ingest.rtsp.errors` / :mod:`~vigil.ingest.rtsp.stats` - failure kinds and
  counters.

What is not supported raises :class:`NativeUnsupported` (an ``IngestError`` of kind
``protocol``) so the caller can read that camera with FFmpeg instead: cameras that refuse
RTP over TCP, video codecs other than H.264/H.265, ``rtsps://``, redirects, encrypted
profiles and authentication schemes other than Basic/Digest (MD5, SHA-256).
"""

from vigil.ingest.rtsp.client import RtspClient
from vigil.ingest.rtsp.container import (
    NativeCodecContext,
    NativeInput,
    NativePacket,
    NativeStream,
    Wait,
    open_native,
)
from vigil.ingest.rtsp.errors import NativeUnsupported
from vigil.ingest.rtsp.stats import RtspStats

__all__ = [
    "NativeCodecContext",
    "NativeInput",
    "NativePacket",
    "NativeStream",
    "NativeUnsupported",
    "RtspClient",
    "RtspStats",
    "Wait",
    "open_native",
]
