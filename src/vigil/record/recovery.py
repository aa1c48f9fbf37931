"""Turning ``.mp4.part`` files into complete segments after a crash or a write failure.

A part file is a fragmented MP4 that only ever grew (the recorder's sink cannot seek), so
its prefix up to the last complete ``moof``+``mdat`` pair is a valid, playable file. Recovery
keeps exactly that prefix: truncate, fsync, rename to ``.mp4``, fsync the directory, and
describe the result from its own boxes (sample counts and durations from ``tfdt``/``trun``,
codec and size from ``stsd``) so the catalog row matches the file, not a guess. Nothing is
decoded.

Every step is idempotent, so a crash *during* recovery is repaired by running it again:
truncating to the same length twice is harmless, the rename is atomic, and a part file
that is already gone is simply skipped. The one state recovery cannot see is a file
renamed to ``.mp4`` whose catalog report was lost (crash between the two); the index's
startup reconciliation finds such files and describes them with ``describe_segment``.

The same code closes segments in normal operation (``finalize_part``), so a cleanly closed
and a recovered segment are described identically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from pathlib import Path

from vigil.record.isobmff import FragmentScan, scan_fragments
from vigil.record.paths import (
    PART_SUFFIX,
    final_path_of,
    fsync_dir,
    parse_segment_name,
)
from vigil.record.types import SegmentCatalog, SegmentInfo

log = logging.getLogger(__name__)

_CHUNK = 1024 * 1024


def _sha256_prefix(fd: int, length: int) -> str:
    h = hashlib.sha256()
    pos = 0
    while pos < length:
        chunk = os.pread(fd, min(_CHUNK, length - pos), pos)
        if not chunk:
            raise OSError(f"file shorter than expected ({pos} < {length})")
        h.update(chunk)
        pos += len(chunk)
    return h.hexdigest()


def _info(
    path: Path, camera: str, scan: FragmentScan, sha256: str, recovered: bool
) -> SegmentInfo:
    start_us, _session = parse_segment_name(path.name)
    video = scan.track("vide")
    audio = scan.track("soun")
    duration = scan.video_duration_us if video is not None else max(
        (t.duration_us for t in scan.tracks.values()), default=0
    )
    return SegmentInfo(
        camera=camera,
        path=path,
        start_us=start_us,
        end_us=start_us + duration,
        duration_us=duration,
        bytes=scan.valid_end,
        packets=scan.samples,
        video_codec=video.codec if video is not None else "",
        width=video.width if video is not None else 0,
        height=video.height if video is not None else 0,
        audio_codec=audio.codec if audio is not None else None,
        sha256=sha256,
        recovered=recovered,
    )


def _free_name(final: Path) -> Path:
    """``final`` or, if a file already has that name, ``<start>-<session>-rN.mp4``.

    Two part files never map to one name in normal operation; this only guards against
    overwriting a complete segment with a salvaged one (e.g. a restored backup)."""
    if not final.exists():
        return final
    stem = final.name[: -len(".mp4")]
    n = 1
    while True:
        candidate = final.with_name(f"{stem}-r{n}.mp4")
        if not candidate.exists():
            return candidate
        n += 1


def finalize_part(
    part: Path,
    camera: str,
    *,
    sha256: str | None = None,
    expected_size: int | None = None,
    expected_packets: int | None = None,
    recovered: bool = False,
) -> SegmentInfo | None:
    """Make ``part`` a complete segment and describe it; None if it held no fragment.

    ``sha256``/``expected_size`` come from a writer that hashed the bytes as it wrote them;
    they are used only when the file was not truncated. Raises OSError when storage
    refuses (the part file is then left in place for a later attempt).
    """
    final = final_path_of(part)
    try:
        fd = os.open(part, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    try:
        size = os.fstat(fd).st_size
        with os.fdopen(os.dup(fd), "rb", buffering=0) as f:
            scan = scan_fragments(f, size)
        if scan.fragments == 0:
            os.close(fd)
            fd = -1
            part.unlink()
            fsync_dir(part.parent)
            log.warning("deleted %s: no complete fragment", part, extra={"camera": camera})
            return None
        truncated = scan.valid_end < size
        if truncated:
            os.ftruncate(fd, scan.valid_end)
            log.warning(
                "%s: kept %d of %d bytes (%d fragments)", part.name, scan.valid_end, size,
                scan.fragments, extra={"camera": camera},
            )
        if truncated or recovered:
            os.fsync(fd)
        if truncated or sha256 is None or expected_size != scan.valid_end:
            digest = _sha256_prefix(fd, scan.valid_end)
        else:
            digest = sha256
        if expected_packets is not None and expected_packets != scan.samples and not truncated:
            log.error(
                "%s: wrote %d packets but the file holds %d samples",
                part.name, expected_packets, scan.samples, extra={"camera": camera},
            )
    finally:
        if fd >= 0:
            os.close(fd)
    target = _free_name(final)
    os.rename(part, target)
    fsync_dir(target.parent)
    return _info(target, camera, scan, digest, recovered or truncated)


def recover_partial(path: Path, camera: str) -> SegmentInfo | None:
    """Recover one ``.mp4.part`` left by a crash: truncate after the last complete
    fragment, fsync, rename to ``.mp4`` and return its description with
    ``recovered=True`` (the caller reports it to the catalog). A part without a complete
    fragment is deleted and None returned; so is a path that no longer exists."""
    return finalize_part(path, camera, recovered=True)


def describe_segment(path: Path, camera: str) -> SegmentInfo:
    """Describe a complete ``.mp4`` segment from its own bytes (for reconciling an index
    with the files on disk). Read-only."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(fd).st_size
        with os.fdopen(os.dup(fd), "rb", buffering=0) as f:
            scan = scan_fragments(f, size)
        if scan.fragments == 0:
            raise ValueError(f"{path} holds no complete fragment")
        digest = _sha256_prefix(fd, size)
    finally:
        os.close(fd)
    info = _info(path, camera, scan, digest, recovered=False)
    if scan.valid_end != size:
        log.warning("%s has %d trailing bytes after its last fragment", path,
                    size - scan.valid_end)
        info = dataclasses.replace(info, bytes=size)
    return info


def scan_partials(root: Path) -> list[Path]:
    """All ``*.mp4.part`` files under ``root``, oldest name first."""
    if not root.is_dir():
        return []
    found = [p for p in root.rglob("*.mp4" + PART_SUFFIX) if p.is_file()]
    return sorted(found, key=lambda p: (p.parent.as_posix(), p.name))


def recover_storage(root: Path, catalog: SegmentCatalog) -> list[SegmentInfo]:
    """Recover every part file under ``root`` (camera = first path component) and report
    each recovered segment to ``catalog``. Run once at startup, before recording."""
    out: list[SegmentInfo] = []
    for part in scan_partials(root):
        camera = part.relative_to(root).parts[0]
        try:
            info = recover_partial(part, camera)
        except (OSError, ValueError) as exc:
            log.error("cannot recover %s: %s", part, exc, extra={"camera": camera})
            continue
        if info is not None:
            catalog.segment_closed(info)
            out.append(info)
    return out


__all__ = [
    "describe_segment",
    "finalize_part",
    "recover_partial",
    "recover_storage",
    "scan_partials",
]
