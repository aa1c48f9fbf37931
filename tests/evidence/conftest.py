"""Shared fixtures for evidence tests: real fragmented-MP4 segments, indexed.

Segments are made by the ffmpeg CLI from frames drawn with numpy, each frame carrying its
own number as a 16-bit pattern of black/white blocks (``read_frame_number`` decodes it), so
a test can tell exactly which instant a player would show. Frames are 100 ms apart (10 fps)
so frame ``n`` of a footage is at wall time ``base_us + n * 100_000`` exactly.

Files are laid out as the recorder does (``<root>/<camera>/YYYY/MM/DD/<start_us>-1.mp4``)
and indexed with ``Index.segment_closed``; encoded files are cached per session and copied,
so building footage in a test costs a copy, not an encode.

Fixtures:

* ``evidence_index`` -> ``IndexedStorage`` (an empty ``Index`` over a tmp storage root).
* ``make_footage`` -> factory ``(segments, gaps=(), camera="cam1", audio=False,
  codec="libx264", base_us=BASE_US, jitter_us=None) -> Footage``; ``segments`` are
  ``(first_frame, n_frames)`` pairs; ``gaps`` are ``(first_frame, end_frame, reason)``
  rows written to the gaps table.
* ``frame_number`` -> ``read_frame_number`` (also ``Footage.frame_number``).
* ``footage`` -> the standard layout: three contiguous 4 s segments (frames 0-119), a 3 s
  ``offline`` gap (frames 120-149), two more 4 s segments (frames 150-229).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from vigil.index.db import Database
from vigil.index.repository import Index
from vigil.record.types import GapInfo, SegmentInfo

BASE_US = 1_700_000_000_000_000  # 2023-11-14T22:13:20Z
FPS = 10
FRAME_US = 1_000_000 // FPS
WIDTH, HEIGHT = 320, 192
_BITS = 16


def frame_pattern(n: int) -> np.ndarray:
    """A gray frame whose 16 blocks spell ``n`` in binary (bit b: row b // 8, column b % 8)."""
    img = np.full((HEIGHT, WIDTH), 16, np.uint8)
    for b in range(_BITS):
        if (n >> b) & 1:
            r, c = divmod(b, 8)
            img[16 + r * 40 : 48 + r * 40, 8 + c * 38 : 40 + c * 38] = 235
    return img


def read_frame_number(frame: object) -> int:
    """The number drawn by ``frame_pattern`` in a decoded ``av.VideoFrame``."""
    img = frame.to_ndarray(format="gray")  # type: ignore[attr-defined]
    n = 0
    for b in range(_BITS):
        r, c = divmod(b, 8)
        block = img[24 + r * 40 : 40 + r * 40, 16 + c * 38 : 32 + c * 38]
        if block.mean() > 128:
            n |= 1 << b
    return n


def encode_segment(
    path: Path,
    first_frame: int,
    frames: int,
    *,
    audio: bool = False,
    codec: str = "libx264",
    gop: int = FPS,
    bframes: int = 0,
) -> None:
    """Encode frames ``first_frame .. first_frame+frames-1`` as a Vigil-like fMP4 segment:
    empty moov, keyframe-led ~1 s fragments with default-base-is-moof, dts starting at 0."""
    args = [
        "ffmpeg",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "gray",
        "-s",
        f"{WIDTH}x{HEIGHT}",
        "-r",
        str(FPS),
        "-i",
        "pipe:0",
    ]
    if audio:
        args += [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate=48000:duration={frames / FPS}",
        ]
    args += ["-map", "0:v"]
    if audio:
        args += ["-map", "1:a", "-c:a", "aac", "-b:a", "48k"]
    if codec == "libx265":
        args += [
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-tag:v",
            "hvc1",
            "-x265-params",
            f"keyint={gop}:min-keyint={gop}:bframes={bframes}:log-level=error",
        ]
    else:
        args += [
            "-c:v",
            codec,
            "-preset",
            "ultrafast",
            "-g",
            str(gop),
            "-keyint_min",
            str(gop),
            "-sc_threshold",
            "0",
            "-bf",
            str(bframes),
        ]
    # No shifting for the AAC encoder's priming samples: with it the CLI stretches the first
    # video sample, and every frame after it would be ~21 ms off its nominal wall time.
    args += [
        "-pix_fmt",
        "yuv420p",
        "-avoid_negative_ts",
        "disabled",
        "-movflags",
        "+frag_keyframe+empty_moov+default_base_moof",
        "-frag_duration",
        "1000000",
        "-frames:v",
        str(frames),
        "-f",
        "mp4",
        str(path),
    ]
    raw = b"".join(frame_pattern(first_frame + k).tobytes() for k in range(frames))
    subprocess.run(args, input=raw, check=True, timeout=60)


def _first_pts_us(path: Path) -> int:
    """Presentation delay of the first video frame (non-zero with B-frames)."""
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        for pkt in c.demux(v):
            if pkt.pts is not None and pkt.dts is not None and v.time_base is not None:
                return round((pkt.pts - pkt.dts) * v.time_base * 1_000_000)
    return 0


@dataclass
class IndexedStorage:
    index: Index
    root: Path


@dataclass
class Footage:
    """Indexed segments of one camera whose frame ``n`` was captured at ``wall(n)``."""

    storage: IndexedStorage
    camera: str
    base_us: int
    segments: list[SegmentInfo] = field(default_factory=list)
    fps: int = FPS
    frame_us: int = FRAME_US

    # Test modules cannot import this conftest (tests/evidence is not a package), so the
    # helpers they need travel with the fixture value.
    frame_number = staticmethod(read_frame_number)
    encode = staticmethod(encode_segment)

    @property
    def index(self) -> Index:
        return self.storage.index

    @property
    def root(self) -> Path:
        return self.storage.root

    def wall(self, frame: int) -> int:
        return self.base_us + frame * FRAME_US

    def frame_at(self, wall_us: int) -> int:
        """Number of the frame on screen at ``wall_us``."""
        return (wall_us - self.base_us) // FRAME_US

    @property
    def start_us(self) -> int:
        return self.segments[0].start_us

    @property
    def end_us(self) -> int:
        return self.segments[-1].end_us


@pytest.fixture
def evidence_index(tmp_path: Path) -> Iterator[IndexedStorage]:
    root = tmp_path / "storage"
    root.mkdir()
    db = Database(f"sqlite:///{tmp_path / 'index.db'}")
    yield IndexedStorage(Index(db, root), root)
    db.close()


@pytest.fixture(scope="session")
def _encoded(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Session cache of encoded segments keyed by content. Skips (only) the tests that need
    media when the ffmpeg CLI is missing; the rest of tests/evidence does not need it."""
    if shutil.which("ffmpeg") is None:  # pragma: no cover - environment guard
        pytest.fail(
            "ffmpeg is required for evidence media tests: run scripts/setup.sh", pytrace=False
        )
    cache_dir = tmp_path_factory.mktemp("encoded")
    cache: dict[tuple[object, ...], Path] = {}

    def get(first: int, frames: int, audio: bool, codec: str, bframes: int) -> Path:
        key = (first, frames, audio, codec, bframes)
        if key not in cache:
            p = cache_dir / f"{first}-{frames}-{int(audio)}-{codec}-{bframes}.mp4"
            encode_segment(p, first, frames, audio=audio, codec=codec, bframes=bframes)
            cache[key] = p
        return cache[key]

    return get


MakeFootage = Callable[..., Footage]


@pytest.fixture
def make_footage(evidence_index: IndexedStorage, _encoded: Callable[..., Path]) -> MakeFootage:
    def make(
        segments: Sequence[tuple[int, int]],
        gaps: Sequence[tuple[int, int, str]] = (),
        *,
        camera: str = "cam1",
        audio: bool = False,
        codec: str = "libx264",
        bframes: int = 0,
        base_us: int = BASE_US,
        jitter_us: Sequence[int] | None = None,
    ) -> Footage:
        fo = Footage(evidence_index, camera, base_us)
        for i, (first, frames) in enumerate(segments):
            src = _encoded(first, frames, audio, codec, bframes)
            # The recorder's convention: start_us is the wall time of media time 0 (the
            # first video dts), so with B-frames the first frame is shown at start_us + pts.
            start = (
                base_us + first * FRAME_US - _first_pts_us(src) + (jitter_us[i] if jitter_us else 0)
            )
            day = datetime.fromtimestamp(start / 1_000_000, UTC)
            dest = (
                evidence_index.root
                / camera
                / f"{day:%Y}"
                / f"{day:%m}"
                / f"{day:%d}"
                / f"{start}-1.mp4"
            )
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            data = dest.read_bytes()
            info = SegmentInfo(
                camera=camera,
                path=dest,
                start_us=start,
                end_us=start + frames * FRAME_US,
                duration_us=frames * FRAME_US,
                bytes=len(data),
                packets=frames + (frames * 48_000 // (1024 * FPS) if audio else 0),
                video_codec="hevc" if codec == "libx265" else "h264",
                width=WIDTH,
                height=HEIGHT,
                audio_codec="aac" if audio else None,
                sha256=hashlib.sha256(data).hexdigest(),
            )
            evidence_index.index.segment_closed(info)
            fo.segments.append(info)
        for first, end, reason in gaps:
            evidence_index.index.gap(
                GapInfo(camera, base_us + first * FRAME_US, base_us + end * FRAME_US, reason)
            )  # type: ignore[arg-type]
        return fo

    return make


@pytest.fixture
def frame_number() -> Callable[[object], int]:
    return read_frame_number


@pytest.fixture
def footage(make_footage: MakeFootage) -> Footage:
    """Frames 0-119 in three contiguous 4 s segments, a 3 s offline gap, frames 150-229."""
    return make_footage(
        [(0, 40), (40, 40), (80, 40), (150, 40), (190, 40)], gaps=[(120, 150, "offline")]
    )
