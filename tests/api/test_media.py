"""Recorded footage over HTTP: progressive MP4 with range requests (206, multipart, 416,
ignored ranges), the fMP4 stream, HLS, JPEG snapshots of the exact frame, timelines with
gaps, events and motion, and recording lists."""

from __future__ import annotations

import io
from typing import Any

import av
import numpy as np
import pytest

from tests.api.conftest import Api, error_of, read_frame_number
from vigil.evidence.hls import parse_playlist


class _Img:
    """Adapter so ``read_frame_number`` reads a decoded JPEG."""

    def __init__(self, gray: np.ndarray) -> None:
        self.gray = gray

    def to_ndarray(self, format: str) -> np.ndarray:
        return self.gray


def _frames(data: bytes) -> list[int]:
    with av.open(io.BytesIO(data)) as c:
        return [read_frame_number(f) for f in c.decode(video=0)]


@pytest.fixture
def clip(api: Api) -> dict[str, Any]:
    f = api.footage["cam1"]
    c = api.admin()
    url = f"/api/cameras/cam1/playback.mp4?start={f.wall(5)}&end={f.wall(35)}"
    full = c.get(url)
    assert full.status_code == 200, full.text
    return {"client": c, "url": url, "data": full.content, "resp": full}


def test_full_mp4_plays_the_requested_frames(api: Api, clip: dict[str, Any]) -> None:
    r = clip["resp"]
    assert r.headers["content-type"] == "video/mp4"
    assert r.headers["accept-ranges"] == "bytes"
    assert int(r.headers["content-length"]) == len(clip["data"])
    assert r.headers["x-vigil-start-us"] == str(api.footage["cam1"].wall(5))
    frames = _frames(clip["data"])
    assert frames[0] == 5 and frames[-1] == 34 and len(frames) == 30


def test_single_ranges(clip: dict[str, Any]) -> None:
    c, url, data = clip["client"], clip["url"], clip["data"]
    size = len(data)
    cases = {
        "bytes=0-99": (0, 99),
        "bytes=100-": (100, size - 1),
        "bytes=-50": (size - 50, size - 1),
        f"bytes=10-{size + 1000}": (10, size - 1),  # clipped to the end
        "bytes=5-5": (5, 5),
        f"bytes=-{size * 2}": (0, size - 1),  # suffix longer than the file
        "bytes=0-10,5-20": (0, 20),  # overlapping ranges merged
        "bytes=0-9,10-19": (0, 19),  # adjacent ranges merged
    }
    for header, (a, b) in cases.items():
        r = c.get(url, headers={"Range": header})
        assert r.status_code == 206, header
        assert r.headers["content-range"] == f"bytes {a}-{b}/{size}", header
        assert r.content == data[a : b + 1], header
        assert int(r.headers["content-length"]) == b - a + 1


def test_multiple_ranges_multipart(clip: dict[str, Any]) -> None:
    c, url, data = clip["client"], clip["url"], clip["data"]
    size = len(data)
    r = c.get(url, headers={"Range": "bytes=0-9, 100-109, -5"})
    assert r.status_code == 206
    ctype = r.headers["content-type"]
    assert ctype.startswith("multipart/byteranges; boundary=")
    boundary = ctype.split("boundary=")[1].encode()
    assert int(r.headers["content-length"]) == len(r.content)
    parts = [p for p in r.content.split(b"--" + boundary) if p.strip(b"\r\n-")]
    assert len(parts) == 3
    expect = [(0, 9), (100, 109), (size - 5, size - 1)]
    for part, (a, b) in zip(parts, expect, strict=True):
        head, body = part.split(b"\r\n\r\n", 1)
        assert f"Content-Range: bytes {a}-{b}/{size}".encode() in head
        assert body.rstrip(b"\r\n") == data[a : b + 1] or body[: b - a + 1] == data[a : b + 1]


@pytest.mark.parametrize(
    "header", ["bytes=99999999-", "bytes=-0", "bytes=99999999-99999999,99999998-"]
)
def test_unsatisfiable_range_416(clip: dict[str, Any], header: str) -> None:
    r = clip["client"].get(clip["url"], headers={"Range": header})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(clip['data'])}"
    assert error_of(r)["code"] == "range_not_satisfiable"


@pytest.mark.parametrize(
    "header",
    [
        "bytes=5-3",
        "bytes=abc",
        "items=0-5",
        "bytes=",
        "bytes=1-2-3",
        "bytes=" + ",".join(["0-1"] * 20),
    ],
)
def test_invalid_ranges_are_ignored(clip: dict[str, Any], header: str) -> None:
    r = clip["client"].get(clip["url"], headers={"Range": header})
    assert r.status_code == 200 and r.content == clip["data"]


def test_if_range(clip: dict[str, Any]) -> None:
    etag = clip["resp"].headers["etag"]
    c, url = clip["client"], clip["url"]
    assert c.get(url, headers={"Range": "bytes=0-9", "If-Range": etag}).status_code == 206
    assert c.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'}).status_code == 200


def test_playback_views_are_audited_once_per_watch(api: Api, clip: dict[str, Any]) -> None:
    c, url = clip["client"], clip["url"]
    for header in ("bytes=0-", "bytes=100-200", "bytes=300-400"):
        c.get(url, headers={"Range": header})
    views = api.app.state.vigil.audit.search(action="recording.view", camera="cam1")[0]
    f = api.footage["cam1"]
    assert len(views) == 2  # the first full GET and the bytes=0- restart, not the seeks
    assert views[0].detail == {"start_us": f.wall(5), "end_us": f.wall(35)}


def test_playback_across_gap_is_joined(api: Api) -> None:
    f = api.footage["cam1"]
    r = api.admin().get(f"/api/cameras/cam1/playback.mp4?start={f.wall(70)}&end={f.wall(160)}")
    assert r.status_code == 200
    frames = _frames(r.content)
    assert frames[0] == 70 and 79 in frames and 150 in frames and frames[-1] == 159


def test_fmp4_stream(api: Api) -> None:
    f = api.footage["cam1"]
    c = api.admin()
    r = c.get(f"/api/cameras/cam1/stream.mp4?start={f.wall(12)}&end={f.wall(30)}")
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    assert b"moof" in r.content and b"prft" in r.content
    frames = _frames(r.content)
    assert 12 in frames and frames[-1] == 29
    r = c.get(f"/api/cameras/cam1/stream.mp4?start={f.wall(100)}")  # in the gap: next recording
    assert r.status_code == 200 and int(r.headers["x-vigil-start-us"]) == f.wall(150)


def test_hls_playlist_init_and_parts(api: Api) -> None:
    f = api.footage["cam1"]
    c = api.admin()
    base = f"/api/cameras/cam1/hls/{f.start_us}/{f.end_us}"
    r = c.get(f"{base}/index.m3u8")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    parts = parse_playlist(r.text)
    assert len(parts) == 3 and parts[2]["discontinuity"] is True
    init = c.get(f"{base}/{str(parts[0]['map']).lstrip('./')}")
    assert init.status_code == 200 and b"moov" in init.content
    body = init.content
    for p in parts:
        got = c.get(f"{base}/{str(p['uri']).lstrip('./')}")
        assert got.status_code == 200 and got.headers["content-type"] == "video/iso.segment"
        body += got.content
    frames = _frames(body)
    assert frames[0] == 0 and 150 in frames
    assert c.get(f"{base}/part/99.m4s").status_code == 404
    assert c.get(f"{base}/init/5.mp4").status_code == 404
    r = c.get(f"/api/cameras/cam1/hls/{f.end_us}/{f.start_us}/index.m3u8")
    assert r.status_code == 400 and error_of(r)["code"] == "invalid_range"


def test_snapshot_is_the_frame_at_the_instant(api: Api) -> None:
    import cv2

    f = api.footage["cam1"]
    c = api.admin()
    for n in (0, 17, 42, 155):
        r = c.get(f"/api/cameras/cam1/snapshot?at={f.wall(n) + 30_000}")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert r.headers["x-vigil-frame-us"] == str(f.wall(n))
        gray = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert read_frame_number(_Img(gray)) == n
    r = c.get("/api/cameras/cam1/snapshot")  # latest recorded frame
    assert r.status_code == 200 and r.headers["x-vigil-frame-us"] == str(f.wall(189))
    r = c.get(f"/api/cameras/cam1/snapshot?at={f.wall(100)}")
    assert r.status_code == 404 and error_of(r)["code"] == "no_footage"


def test_live_snapshot_provider_is_used(api: Api) -> None:
    api.ctx.live_snapshot = lambda cam: b"\xff\xd8live-" + cam.encode()
    r = api.admin().get("/api/cameras/cam2/snapshot")
    assert r.status_code == 200 and r.content == b"\xff\xd8live-cam2"


def test_timeline(api: Api) -> None:
    f = api.footage["cam1"]
    store = api.ctx.events
    assert store is not None
    for k in range(10):
        store.add_activity(_Act("cam1", f.start_us // 1_000_000 + k, 0.1 * k, 0.05))
    c = api.admin()
    r = c.get(f"/api/cameras/cam1/timeline?start={f.start_us}&end={f.wall(200)}&motion_buckets=5")
    assert r.status_code == 200
    doc = r.json()
    assert [(s["start_us"], s["end_us"]) for s in doc["spans"]] == [
        (f.wall(0), f.wall(80)),
        (f.wall(150), f.wall(190)),
    ]
    assert [(g["reason"]) for g in doc["gaps"]] == ["offline", "unknown"]
    assert {e["reference"] for e in doc["events"]} >= {api.events["cam1"]}
    motion = doc["motion"]
    assert motion["bucket_s"] == 4
    assert len(motion["buckets"]) == 3  # seconds 0-3, 4-7, 8-9
    assert motion["buckets"][0]["peak"] == pytest.approx(0.3)
    assert motion["buckets"][2]["start_us"] == f.start_us + 8_000_000


def test_timeline_of_camera_never_recorded(bare_api: Api) -> None:
    from tests.api.conftest import add_users

    add_users(bare_api)
    r = bare_api.admin().get("/api/cameras/cam2/timeline?start=1000&end=2000")
    assert r.status_code == 200
    assert r.json()["spans"] == [] and r.json()["gaps"][0]["reason"] == "unknown"


def test_recordings_list(api: Api) -> None:
    f = api.footage["cam1"]
    r = api.admin().get(f"/api/cameras/cam1/recordings?start={f.start_us}&end={f.end_us}&limit=2")
    doc = r.json()
    assert r.status_code == 200 and doc["truncated"] is True
    assert [s["start_us"] for s in doc["segments"]] == [f.wall(0), f.wall(40)]
    assert doc["gaps"][0]["reason"] == "offline"
    assert "path" not in doc["segments"][0]


class _Act:
    def __init__(self, camera: str, second: int, peak: float, mean: float) -> None:
        self.camera, self.second, self.peak, self.mean = camera, second, peak, mean
        self.motion_frames = 1
