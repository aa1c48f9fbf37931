"""Where segment files live and the small filesystem rituals around them.

Layout: ``<root>/<camera>/<YYYY>/<MM>/<DD>/<start_us>-<session>.mp4`` with the date in UTC,
so a directory never changes meaning when the host's time zone or DST does, and a name sorts
by time. While being written a segment is ``<...>.mp4.part``; only complete files carry the
``.mp4`` name, which is what makes a crash leave an unambiguous state behind.

A rename or a new file is durable only once its *directory* is fsynced; ``fsync_dir`` is
called after every create/rename/unlink the recorder relies on.
"""

from __future__ import annotations

import contextlib
import os
import re
from datetime import UTC, datetime
from pathlib import Path

PART_SUFFIX = ".part"
SEGMENT_SUFFIX = ".mp4"
_NAME_RE = re.compile(r"^(?P<start>\d{1,20})-(?P<session>\d{1,20})(?:-r(?P<n>\d+))?\.mp4$")


class UnsafePathError(ValueError):
    """A computed segment path would escape the storage root."""


def segment_dir(root: Path, camera: str, start_us: int) -> Path:
    day = datetime.fromtimestamp(start_us / 1_000_000, tz=UTC)
    return root / camera / f"{day.year:04d}" / f"{day.month:02d}" / f"{day.day:02d}"


def segment_path(
    root: Path, camera: str, start_us: int, session_id: int, attempt: int = 0
) -> Path:
    """Final (``.mp4``) path of a segment; asserts it stays inside ``root``.

    Camera names are validated by the config model, but this is the point where a name
    becomes a path, so it is checked again here rather than trusted. ``attempt`` > 0 adds
    ``-rN`` for the (practically impossible) case of a name already taken, e.g. after a
    restart with the clock set back.
    """
    suffix = f"-r{attempt}" if attempt else ""
    name = f"{start_us}-{session_id}{suffix}{SEGMENT_SUFFIX}"
    path = segment_dir(root, camera, start_us) / name
    ensure_under(root, path)
    return path


def part_path(final: Path) -> Path:
    return final.with_name(final.name + PART_SUFFIX)


def final_path_of(part: Path) -> Path:
    if not part.name.endswith(SEGMENT_SUFFIX + PART_SUFFIX):
        raise ValueError(f"{part} is not a segment part file")
    return part.with_name(part.name[: -len(PART_SUFFIX)])


def parse_segment_name(name: str) -> tuple[int, int]:
    """(start_us, session_id) from a segment file name (``.part`` allowed)."""
    if name.endswith(PART_SUFFIX):
        name = name[: -len(PART_SUFFIX)]
    m = _NAME_RE.match(name)
    if m is None:
        raise ValueError(f"{name!r} is not a segment file name")
    return int(m["start"]), int(m["session"])


def ensure_under(root: Path, path: Path) -> None:
    root_r = root.resolve()
    path_r = path.resolve()
    if path_r == root_r or root_r not in path_r.parents:
        raise UnsafePathError(f"{path} is outside the storage root {root}")


def fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` (creates, renames, unlinks) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(root: Path, directory: Path) -> None:
    """Create ``directory`` (below ``root``) and fsync each parent whose entries changed,
    so a freshly created day directory does not vanish with the files in it on power loss."""
    missing: list[Path] = []
    d = directory
    while not d.exists():
        missing.append(d)
        if d == root or d.parent == d:
            break
        d = d.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir()
        fsync_dir(d.parent)
