"""Browser: the single-camera page plays live video over WebRTC (H.264 passed through by
the server), falls back for H.265, can be kept on MSE, and closes its peer on leaving.

Chromium runs with its default WebRTC settings: its host candidates are hidden behind
mDNS names (``*.local``), which the server drops (it sends no multicast); the connection
is made by Chromium's checks to the server's host candidates (peer-reflexive)."""

from __future__ import annotations

import time
from typing import Any

from tests.web.conftest import ADMIN, Vigil, login, screenshot
from tests.web.test_live_grid import sample, wait_playing

VIDEO = "#player video.live-video"


def wait_for(fn: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def rtc_peers(vigil: Vigil, camera: str) -> int:
    hub = vigil.registry.get(camera, "main")
    assert hub is not None
    feed = hub._rtc
    return feed.peer_count if feed is not None else 0


def test_camera_page_plays_over_webrtc(page: Any, vigil: Vigil) -> None:
    login(page, ADMIN)
    page.goto("/#/camera/door")
    page.wait_for_selector('#player .live[data-transport="webrtc"][data-state="live"]',
                           timeout=30000)
    # the picture comes from a MediaStream (WebRTC), not a MediaSource blob
    assert page.eval_on_selector(VIDEO, "v => v.srcObject instanceof MediaStream")
    assert page.eval_on_selector(VIDEO, "v => !v.src")
    t0 = wait_playing(page, VIDEO)
    first = sample(page, VIDEO)
    time.sleep(1.5)
    t1 = page.eval_on_selector(VIDEO, "v => v.currentTime")
    second = sample(page, VIDEO)
    assert t1 > t0 + 0.5, f"video time did not advance: {t0} -> {t1}"
    assert first is not None and second is not None
    assert (first["w"], first["h"]) == (320, 240)
    assert first["std"] > 10 and second["std"] > 10, "blank picture"
    assert first["print"] != second["print"], "the picture does not change"
    assert rtc_peers(vigil, "door") == 1  # one peer, fed from the recorder's connection
    screenshot(page, "17-camera-webrtc")
    # leaving the page closes the peer on the server (DELETE, or the peer's own close)
    page.goto("/#/")
    wait_for(lambda: rtc_peers(vigil, "door") == 0, 15, "the WebRTC peer to close")
    assert page.errors.unexpected() == []


def test_webrtc_reconnects_when_the_server_ends_the_peer(page: Any, vigil: Vigil) -> None:
    login(page, ADMIN)
    page.goto("/#/camera/yard")
    page.wait_for_selector('#player .live[data-transport="webrtc"][data-state="live"]',
                           timeout=30000)
    hub = vigil.registry.get("yard", "main")
    assert hub is not None and hub._rtc is not None
    with hub._rtc._lock:
        before = list(hub._rtc._tracks)
    assert len(before) == 1
    # the server ends the peer (as a hub restart does): the page notices the dead peer
    # connection or the frozen picture and connects again, over WebRTC
    for t in before:
        t.end("hub_closed")

    def replaced() -> bool:
        with hub._rtc._lock:
            now = list(hub._rtc._tracks)
        return bool(now) and not set(map(id, now)) & set(map(id, before))

    wait_for(replaced, 40, "a new WebRTC peer")
    page.wait_for_selector('#player .live[data-transport="webrtc"][data-state="live"]',
                           timeout=30000)
    t0 = page.eval_on_selector(VIDEO, "v => v.currentTime")
    wait_for(lambda: page.eval_on_selector(VIDEO, "v => v.currentTime") > t0 + 0.5, 15,
             "the video to play again")
    page.goto("/#/")
    wait_for(lambda: rtc_peers(vigil, "yard") == 0, 15, "the WebRTC peer to close")
    assert page.errors.unexpected() == []


def test_h265_camera_falls_back_from_webrtc(page: Any, vigil: Vigil) -> None:
    login(page, ADMIN)
    page.goto("/#/camera/garage")
    # WebRTC is refused (409 unsupported_codec), MSE cannot play H.265 in Chromium: MJPEG
    page.wait_for_selector('#player .live.is-mjpeg[data-transport="mjpeg"]', timeout=30000)
    img = "#player .live.is-mjpeg img"
    shots = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len({str(s["print"]) for s in shots if s}) < 2:
        shots.append(sample(page, img))
        time.sleep(0.4)
    assert len({str(s["print"]) for s in shots if s}) >= 2, "MJPEG pictures do not change"
    assert rtc_peers(vigil, "garage") == 0
    assert page.errors.unexpected(("409",)) == []


def test_mse_can_be_chosen_and_stays_at_the_live_edge(page: Any, vigil: Vigil) -> None:
    peers_before = rtc_peers(vigil, "yard")
    login(page, ADMIN)
    page.goto("/#/camera/yard?live=mse")
    page.wait_for_selector('#player .live[data-transport="mse"][data-state="live"]',
                           timeout=30000)
    wait_playing(page, VIDEO)
    assert page.eval_on_selector(VIDEO, "v => v.src.startsWith('blob:')")
    # the player chases the newest buffered frame instead of keeping a lag: put the
    # playhead 0.8 s further behind; it speeds up (1.25x) until it is back near the edge
    time.sleep(2)
    ahead_js = "v => v.buffered.end(v.buffered.length - 1) - v.currentTime"
    page.eval_on_selector(VIDEO, "v => { v.currentTime = v.currentTime - 0.8; }")
    wait_for(lambda: page.eval_on_selector(VIDEO, "v => v.playbackRate") == 1.25, 10,
             "the player to speed up")
    assert page.eval_on_selector(VIDEO, ahead_js) > 0.5
    wait_for(lambda: page.eval_on_selector(VIDEO, "v => v.playbackRate") == 1, 30,
             "the player to catch up")
    ahead = page.eval_on_selector(VIDEO, ahead_js)
    assert 0 <= ahead < 0.6, f"{ahead:.3f} s buffered ahead of the playhead"
    assert rtc_peers(vigil, "yard") == peers_before  # no WebRTC peer for this page
    assert page.errors.unexpected() == []
