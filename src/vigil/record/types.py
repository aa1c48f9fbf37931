"""What the recorder reports about the files it writes, and to whom.

The recorder knows nothing of databases: it reports closed segments and gaps to a
``SegmentCatalog`` (the index implements it). That keeps the write ordering in one place:
a segment is reported only once its file is complete, fsynced and renamed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

GapReason = Literal[
    "offline",  # camera unreachable / connection lost
    "stalled",  # connection open but no packets
    "disk_full",  # recording paused for lack of space or write error
    "restart",  # the recorder itself was not running (crash, upgrade)
    "retention",  # footage existed and was deleted by retention
    "codec_change",  # never a real gap: zero length boundary, kept for the timeline
    "error",  # storage or muxer error
]


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """A closed, complete segment file. Times are microseconds since the Unix epoch."""

    camera: str
    path: Path  # absolute final path (after rename)
    start_us: int  # wall time of the first video packet
    end_us: int  # start_us + media duration
    duration_us: int  # exact media duration from timestamps
    bytes: int
    packets: int  # packets written (video + audio)
    video_codec: str
    width: int
    height: int
    audio_codec: str | None
    sha256: str  # hex digest of the whole file
    recovered: bool = False  # True when rebuilt after a crash (truncated to a fragment)


@dataclass(frozen=True, slots=True)
class GapInfo:
    camera: str
    start_us: int
    end_us: int
    reason: GapReason
    detail: str = ""
    # True when the gap has begun but its end is unknown (recording paused on a storage
    # error): ``end_us == start_us`` then, so a catalog that skips empty gaps stores
    # nothing yet. The same gap (same ``camera``/``start_us``/``reason``) is reported again
    # with ``ongoing=False`` and its real end once recording resumes.
    ongoing: bool = False


class SegmentCatalog(Protocol):
    """Where closed segments and gaps are reported. Must be thread-safe: recorders of
    different cameras call it from their own ingest threads."""

    def segment_closed(self, info: SegmentInfo) -> None: ...

    def gap(self, info: GapInfo) -> None: ...
