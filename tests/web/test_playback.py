"""Browser: clicking a past instant on the timeline plays the footage of that instant.

The "door" camera burns its frame number into every frame (``SimCamera(stamp=True)``). The
test reads the number back from the picture the browser shows and compares it with the
frame Vigil itself decodes, server-side, for the wall-clock time the page displays."""

from __future__ import annotations

import base64
import time
from typing import Any

import cv2
import numpy as np

from tests.web.conftest import ADMIN, Vigil, login, screenshot
from vigil.evidence.playback import frame_at
from vigil.sim.media import read_stamp

FRAME_US = 1_000_000 / 15
PNG_JS = """(v) => { const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  c.getContext('2d').drawImage(v, 0, 0); return c.toDataURL('image/png'); }"""


def shown_stamp(page: Any) -> int | None:
    url = page.eval_on_selector("#playback", PNG_JS)
    data = base64.b64decode(url.split(",", 1)[1])
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return read_stamp(img)


def server_stamp(vigil: Vigil, wall_us: int) -> int | None:
    frame, _wall = frame_at(vigil.index, "door", wall_us)
    return read_stamp(frame.to_ndarray(format="bgr24"))


def paused_at(page: Any, seconds: float | None = None) -> tuple[float, int]:
    """Pause (and seek to ``seconds``), wait for the frame, return (currentTime, wall)."""
    page.eval_on_selector(
        "#playback",
        """(v, t) => new Promise((ok) => { v.pause();
            if (t === null) { requestAnimationFrame(() => ok()); return; }
            v.addEventListener('seeked', () => ok(), {once: true}); v.currentTime = t; })""",
        seconds,
    )
    time.sleep(0.3)  # the clock updates every 100 ms
    t = page.eval_on_selector("#playback", "v => v.currentTime")
    wall = int(page.get_attribute("#clock", "data-wall-us") or 0)
    return float(t), wall


def test_timeline_click_plays_that_instant(page: Any, vigil: Vigil) -> None:
    vigil.wait_footage("door", 10)
    login(page, ADMIN)
    page.goto("/#/camera/door")
    page.wait_for_selector(".timeline-canvas")
    page.click("text=15 min")
    spans = vigil.spans("door")
    start, end = spans[0][0], spans[-1][1]
    target = start + (end - start) // 2
    box = page.locator(".timeline-canvas").bounding_box()
    t0 = int(page.get_attribute(".timeline", "data-start-us"))
    t1 = int(page.get_attribute(".timeline", "data-end-us"))
    x = box["x"] + (target - t0) / (t1 - t0) * box["width"]
    page.mouse.click(x, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "() => { const v = document.querySelector('#playback');"
        " return v && !v.hidden && v.readyState >= 2 && v.currentTime > 0.2; }",
        timeout=20000,
    )
    requested = int(page.get_attribute("#player", "data-requested-us"))
    clip_start = int(page.get_attribute("#player", "data-clip-start-us"))
    # the clip starts with the frame on screen at the clicked instant
    assert abs(requested - target) < (t1 - t0) / box["width"] * 2  # within 2 px of the click
    assert requested - FRAME_US * 1.5 <= clip_start <= requested + 1000

    checks = []
    for seek in (None, 0.0, 1.0, 2.6):
        current, wall = paused_at(page, seek)
        assert wall == clip_start + round(current * 1e6) or abs(
            wall - (clip_start + current * 1e6)
        ) < 2_000
        got, want = shown_stamp(page), server_stamp(vigil, wall)
        assert got is not None, "no frame stamp in the picture the browser shows"
        checks.append((seek, current, got, want))
        # within one frame (the browser may be on the neighbour at an exact boundary)
        assert want is not None and abs(got - want) <= 1, checks
    screenshot(page, "04-camera-playback")

    # keyboard: "." and "," step one frame; Space plays and pauses
    frames = 8 * 15  # the stamp counts frames of the 8 s clip the simulator loops
    before = shown_stamp(page)
    assert before is not None
    for key, delta in ((".", 1), (".", 2), (",", 1)):
        page.keyboard.press(key)
        page.wait_for_function("() => !document.querySelector('#playback').seeking")
        time.sleep(0.3)
        assert shown_stamp(page) == (before + delta) % frames, key
    page.keyboard.press(" ")
    page.wait_for_function("() => !document.querySelector('#playback').paused")
    page.keyboard.press(" ")
    page.wait_for_function("() => document.querySelector('#playback').paused")
    assert page.errors.unexpected() == []
