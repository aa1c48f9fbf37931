"""Ingest: camera streams in, time-stamped packets out, never decoded.

Public API:

* :class:`CameraReader` - one thread per camera stream; connects, reconnects with back-off,
  detects stalls and codec changes, and calls :class:`PacketSink` s with sessions and packets.
* :func:`probe` / :class:`ProbeResult` - one-shot check of a source (``vigil cameras test``).
* :class:`CameraHealth` - thread-safe health snapshots (``CameraReader.health()``).
* :class:`SessionClock` - the timestamp mapper (media time per session, wall time).
* :class:`IngestError` - classified, redacted failures.
"""

from vigil.ingest.clock import MappedTime, SessionClock
from vigil.ingest.errors import IngestError
from vigil.ingest.health import CameraHealth
from vigil.ingest.probe import AudioInfo, ProbeResult, probe
from vigil.ingest.reader import CameraReader
from vigil.ingest.types import CodecParams, PacketSink, StreamSession, TimedPacket

__all__ = [
    "AudioInfo",
    "CameraHealth",
    "CameraReader",
    "CodecParams",
    "IngestError",
    "MappedTime",
    "PacketSink",
    "ProbeResult",
    "SessionClock",
    "StreamSession",
    "TimedPacket",
    "probe",
]
