"""Recording: packets from ingest become fragmented-MP4 segment files by stream copy.

Public API: ``Recorder`` (one per camera, a ``PacketSink``), ``recover_storage`` /
``recover_partial`` / ``scan_partials`` / ``describe_segment`` for startup recovery and
index reconciliation, and ``verify_playable`` to prove a file decodes.
"""

from vigil.record.recorder import Recorder, RecorderStatus, gap_reason, probe_writable
from vigil.record.recovery import (
    describe_segment,
    recover_partial,
    recover_storage,
    scan_partials,
)
from vigil.record.verify import verify_playable
from vigil.record.writer import OpenSegment, SegmentWriteError

__all__ = [
    "OpenSegment",
    "Recorder",
    "RecorderStatus",
    "SegmentWriteError",
    "describe_segment",
    "gap_reason",
    "probe_writable",
    "recover_partial",
    "recover_storage",
    "scan_partials",
    "verify_playable",
]
