#!/usr/bin/python3
"""Vigil camera simulator: an RTSP server that loops pre-encoded clips forever.

This file is a standalone script for the *system* interpreter (``/usr/bin/python3``), because
GStreamer's Python bindings (``python3-gi``, ``gir1.2-gst-rtsp-server-1.0``) exist only
there, not in the project's venv. It imports only the standard library and ``gi``. The venv
side (``vigil.sim.controller``) prepares the clips and drives this process.

Design, and why:

* **No encoding while serving.** Each clip (an MP4 made by ``vigil.sim.media``) is demuxed
  once at load time into a list of access units held in memory as ``Gst.Buffer`` objects.
  Cameras playing the same clip share those buffers; each push is a shallow copy (new
  timestamps, same memory). Serving a camera therefore costs a timer wake-up per frame plus
  RTP payloading, which is what makes a hundred 1080p cameras on one machine possible.
* **One shared pipeline per camera** (``appsrc ! rtph264pay``; plus ``appsrc !
  rtpmp4gpay`` for AAC), whatever the number of viewers, like a real camera's encoder.
* **Real-time pacing, monotonic timestamps.** A GLib timer per camera pushes each access
  unit when its time comes, with PTS = start + loop_offset + position, so timestamps keep
  increasing across loops. If the process falls behind (overload, a paused pipeline) by
  more than ``MAX_LAG_NS`` the schedule is shifted instead of bursting to catch up.
* **Parameter sets in band.** Every IDR access unit carries SPS/PPS (VPS for H.265), so a
  viewer joining mid-stream or a clip switch mid-stream needs no SDP round trip.

Configuration (JSON, from ``--config FILE`` or, if absent, the first line of stdin)::

    {"cameras": [{"name": "cam1",
                  "clip": {"path": "/…/clip.mp4", "codec": "h264", "audio": false},
                  "transport": "any" | "tcp_only" | "udp_only",
                  "username": null, "password": null}],
     "linger": 5.0}

``linger`` is how long a camera's pipeline outlives its last viewer (see CameraFactory).

Control channel: one command per line on stdin, JSON (``{"id": 1, "cmd": "stall",
"camera": "cam1"}``; ``switch`` takes ``"clip": {...}`` as in the configuration) or plain
text for humans (``stall cam1``; ``switch cam1 /path/clip.mp4 h265 [audio]``). Commands:

``stop <cam>``     disconnect the camera's clients and refuse new ones (404), like a
                   camera that went offline.
``start <cam>``    serve it again.
``stall <cam>``    keep every connection open but send no media packets (a hung camera or
                   a black-holed network); frames produced meanwhile are dropped.
``unstall <cam>``  resume; video resumes at the next keyframe, as after packet loss.
``switch <cam> <clip>``  continue with another clip. Same codec and audio layout: switched
                   in place, existing viewers get new in-band parameter sets and new
                   viewers the new SDP. Different codec or audio layout: the camera
                   "reboots" (viewers are disconnected, reconnecting gets the new stream).
``list``           reply with the cameras and their state.

Every command gets one JSON reply line on stdout: ``{"event": "ok", "id": …}`` or
``{"event": "error", "id": …, "error": "…"}``. When serving starts the process prints
``{"event": "ready", "port": N, "cameras": […]}``. It exits cleanly when stdin closes (so it
never outlives its controller) and on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

MS = 1_000_000  # nanoseconds per millisecond
#: Push access units up to this much before their time, so one wake-up serves units that
#: are due together (audio and video) instead of waking twice within a few ms.
LEAD_NS = 4 * MS
#: Beyond this lag, shift the schedule rather than bursting frames to catch up.
MAX_LAG_NS = 500 * MS
#: A camera's pipeline outlives its last viewer by this long, so quick reconnects find the
#: stream running (as on a real camera) while idle cameras stop costing CPU.
LINGER_S = 5.0
#: Loaded clips are limited to this many bytes each, a guard against loading a film.
MAX_CLIP_BYTES = 1 << 30
VIDEO_CODECS = {
    "h264": ("h264parse", "video/x-h264", "rtph264pay"),
    "h265": ("h265parse", "video/x-h265", "rtph265pay"),
}
DEMUXERS = {".mp4": "qtdemux", ".m4v": "qtdemux", ".mov": "qtdemux", ".mkv": "matroskademux"}

_stdout_lock = threading.Lock()


def emit(event: str, **fields: Any) -> None:
    """One JSON line on stdout: the controller's only view of this process."""
    line = json.dumps({"event": event, **fields})
    with _stdout_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def log(msg: str) -> None:
    sys.stderr.write(f"vigil-sim: {msg}\n")
    sys.stderr.flush()


class SimError(Exception):
    """A command or configuration error, reported to the controller, never fatal."""


# --------------------------------------------------------------------------- clips


@dataclass
class Unit:
    """One access unit of a clip: video frame or AAC frame, at ``offset`` ns in the clip."""

    offset: int
    video: bool
    buffer: Gst.Buffer
    duration: int
    keyframe: bool


@dataclass
class Clip:
    """A clip's access units, loaded once and shared by every camera that plays it."""

    path: str
    codec: str
    audio: bool
    video_caps: Gst.Caps
    audio_caps: Gst.Caps | None
    units: list[Unit]
    duration: int  # loop length in ns (the video's length)
    width: int = 0
    height: int = 0

    @property
    def key(self) -> tuple[str, str, bool]:
        return (self.path, self.codec, self.audio)


def clip_key(spec: dict[str, Any]) -> tuple[str, str, bool]:
    try:
        path = str(spec["path"])
        codec = str(spec.get("codec", "h264"))
        audio = bool(spec.get("audio", False))
    except (KeyError, TypeError) as exc:
        raise SimError(f"bad clip spec {spec!r}") from exc
    if codec not in VIDEO_CODECS:
        raise SimError(f"unsupported codec {codec!r}")
    return (path, codec, audio)


def load_clip(path: str, codec: str, audio: bool) -> Clip:
    """Demux and parse a clip into access units with a one-off GStreamer pipeline.

    The parser runs with ``config-interval=-1`` so every IDR unit stored carries its
    parameter sets, which the serving pipeline then sends in band without a parser.
    """
    ext = os.path.splitext(path)[1].lower()
    demux = DEMUXERS.get(ext)
    if demux is None:
        raise SimError(f"{path}: unsupported container {ext!r} (use .mp4, .mov or .mkv)")
    if not os.path.isfile(path):
        raise SimError(f"{path}: no such file")
    parse, media_type, _ = VIDEO_CODECS[codec]
    desc = (
        f"filesrc name=src ! {demux} name=d "
        f"d.video_0 ! queue ! {parse} config-interval=-1 ! "
        f"{media_type},stream-format=byte-stream,alignment=au ! "
        "appsink name=v sync=false emit-signals=true"
    )
    if audio:
        desc += (
            " d.audio_0 ! queue ! aacparse ! audio/mpeg,stream-format=raw ! "
            "appsink name=a sync=false emit-signals=true"
        )
    pipeline = Gst.parse_launch(desc)
    pipeline.get_by_name("src").set_property("location", path)
    samples: dict[str, list[Gst.Sample]] = {"v": [], "a": []}
    total = [0]
    lock = threading.Lock()

    def on_sample(sink: Gst.Element, kind: str) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        with lock:
            samples[kind].append(sample)
            total[0] += sample.get_buffer().get_size()
            if total[0] > MAX_CLIP_BYTES:
                return Gst.FlowReturn.ERROR
        return Gst.FlowReturn.OK

    pipeline.get_by_name("v").connect("new-sample", on_sample, "v")
    if audio:
        pipeline.get_by_name("a").connect("new-sample", on_sample, "a")
    bus = pipeline.get_bus()
    pipeline.set_state(Gst.State.PLAYING)
    try:
        msg = bus.timed_pop_filtered(120 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
        if msg is None:
            raise SimError(f"{path}: timed out loading")
        if msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            raise SimError(f"{path}: {err.message} ({dbg})")
    finally:
        pipeline.set_state(Gst.State.NULL)
    if not samples["v"]:
        raise SimError(f"{path}: no {codec} video found")
    if audio and not samples["a"]:
        raise SimError(f"{path}: no AAC audio found")

    video_caps = samples["v"][0].get_caps()
    st = video_caps.get_structure(0)
    width = st.get_int("width")[1]
    height = st.get_int("height")[1]
    ok, num, den = st.get_fraction("framerate")
    frame_ns = Gst.util_uint64_scale(Gst.SECOND, den, num) if ok and num > 0 else 66 * MS

    vbufs = [s.get_buffer() for s in samples["v"]]
    first = vbufs[0].pts
    units: list[Unit] = []
    for buf in vbufs:
        offset = buf.pts - first
        dur = buf.duration if buf.duration != Gst.CLOCK_TIME_NONE else frame_ns
        keyframe = not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
        units.append(Unit(offset, True, buf, dur, keyframe))
    if not units[0].keyframe:
        raise SimError(f"{path}: does not start with a keyframe")
    duration = units[-1].offset + units[-1].duration
    audio_caps = None
    if audio:
        audio_caps = samples["a"][0].get_caps()
        for s in samples["a"]:
            buf = s.get_buffer()
            offset = buf.pts - first
            if 0 <= offset < duration:
                dur = buf.duration if buf.duration != Gst.CLOCK_TIME_NONE else 0
                units.append(Unit(offset, False, buf, dur, True))
    units.sort(key=lambda u: (u.offset, not u.video))
    return Clip(path, codec, audio, video_caps, audio_caps, units, duration, width, height)


# --------------------------------------------------------------------------- feeding


class Feeder:
    """Pushes one camera's clip into one media pipeline at real-time pace."""

    COPY_FLAGS = Gst.BufferCopyFlags.MEMORY | Gst.BufferCopyFlags.FLAGS

    def __init__(self, cam: Camera, media: GstRtspServer.RTSPMedia, clip: Clip) -> None:
        self.cam = cam
        self.media = media
        self.clip = clip
        bin_ = media.get_element()
        self.vsrc: Gst.Element = bin_.get_by_name("vsrc")
        self.asrc: Gst.Element | None = bin_.get_by_name("asrc")
        self.vsrc.set_property("caps", clip.video_caps)
        if self.asrc is not None and clip.audio_caps is not None:
            self.asrc.set_property("caps", clip.audio_caps)
        self.clock: Gst.Clock | None = None
        self.t0 = -1  # running time of the schedule's origin
        self.base = 0  # offset of the current loop, relative to t0
        self.idx = 0
        self.need_keyframe = False
        self.timer = 0
        self.alive = True
        self.held = False  # holds an extra prepare reference on the media
        self.idle_since: float | None = None  # monotonic time the last viewer left

    def start(self) -> None:
        self._schedule(0)

    def stop(self) -> None:
        """Stop pushing (main loop only)."""
        self.alive = False
        if self.timer:
            GLib.source_remove(self.timer)
            self.timer = 0

    def drop_hold(self) -> None:
        """Give the media back to GstRtspServer, which unprepares it when unused."""
        if self.held:
            self.held = False
            self.media.unprepare()

    def release(self) -> None:
        """Stop and tear the media down, whoever else still holds it (main loop only)."""
        self.stop()
        live = (GstRtspServer.RTSPMediaStatus.PREPARED, GstRtspServer.RTSPMediaStatus.SUSPENDED)
        for _ in range(1000):  # one unprepare per prepare reference
            if self.media.get_status() not in live:
                break
            self.media.unprepare()

    def _schedule(self, delay_ms: int) -> None:
        self.timer = GLib.timeout_add(max(0, delay_ms), self._tick)

    def _now(self) -> int | None:
        """Pipeline running time, or ``None`` while the pipeline is not playing."""
        if self.vsrc.get_state(0)[1] != Gst.State.PLAYING:
            return None
        if self.clock is None:
            self.clock = self.vsrc.get_clock()
            if self.clock is None:
                return None
        return int(self.clock.get_time() - self.vsrc.get_base_time())

    def _tick(self) -> bool:
        self.timer = 0
        if not self.alive:
            return False
        now = self._now()
        if now is None:
            self._schedule(10)
            return False
        if self.t0 < 0:
            self.t0 = now
        units = self.clip.units
        due = self.t0 + self.base + units[self.idx].offset
        late = now - due
        if late > self.cam.max_late_ns:
            self.cam.max_late_ns = late
        if late > MAX_LAG_NS:
            # Fell behind (overload or a pause): shift time rather than burst.
            self.cam.resyncs += 1
            self.base += late
            due = now
        stalled = self.cam.stalled
        while due <= now + LEAD_NS:
            unit = units[self.idx]
            if stalled:
                if unit.video:
                    self.need_keyframe = True
            elif unit.video and self.need_keyframe and not unit.keyframe:
                pass  # after a stall, wait for a decodable frame
            else:
                if unit.video:
                    self.need_keyframe = False
                if not self._push(unit, due):
                    return False
            self.idx += 1
            if self.idx == len(units):
                self.idx = 0
                self.base += self.clip.duration
            due = self.t0 + self.base + units[self.idx].offset
        self._schedule((due - LEAD_NS - now + MS - 1) // MS)
        return False

    def _push(self, unit: Unit, pts: int) -> bool:
        src = self.vsrc if unit.video else self.asrc
        if src is None:
            return True
        buf = unit.buffer.copy_region(self.COPY_FLAGS, 0, unit.buffer.get_size())
        buf.unset_flags(Gst.BufferFlags.DISCONT)  # the clip's first buffer has it; loops don't
        buf.pts = pts
        buf.dts = pts
        buf.duration = unit.duration
        ret = src.emit("push-buffer", buf)
        if ret in (Gst.FlowReturn.OK, Gst.FlowReturn.NOT_LINKED):
            self.cam.units_sent += 1
            return True
        if ret != Gst.FlowReturn.FLUSHING:
            log(f"{self.cam.name}: push returned {ret.value_nick}; stopping feeder")
        self.stop()
        return False

    def switch(self, clip: Clip) -> None:
        """Continue with ``clip`` from its first (key) frame at the next scheduled time."""
        next_offset = self.base + self.clip.units[self.idx].offset
        self.clip = clip
        self.idx = 0
        self.base = next_offset
        self.need_keyframe = False
        self.vsrc.set_property("caps", clip.video_caps)
        if self.asrc is not None and clip.audio_caps is not None:
            self.asrc.set_property("caps", clip.audio_caps)


# --------------------------------------------------------------------------- cameras


@dataclass(eq=False)
class Camera:
    name: str
    clip: Clip
    transport: str = "any"
    username: str | None = None
    password: str | None = None
    role: str = "anonymous"
    stopped: bool = False
    stalled: bool = False
    factory: CameraFactory | None = None
    feeders: set[Feeder] = field(default_factory=set)
    # Pacing statistics, so a benchmark can check that the simulator itself kept up.
    units_sent: int = 0
    max_late_ns: int = 0
    resyncs: int = 0

    @property
    def path(self) -> str:
        return "/" + self.name

    def state(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "clip": self.clip.path,
            "codec": self.clip.codec,
            "audio": self.clip.audio,
            "width": self.clip.width,
            "height": self.clip.height,
            "stopped": self.stopped,
            "stalled": self.stalled,
            "pipelines": len(self.feeders),
            "units_sent": self.units_sent,
            "max_late_ms": round(self.max_late_ns / MS, 1),
            "resyncs": self.resyncs,
        }


class CameraFactory(GstRtspServer.RTSPMediaFactory):
    """Builds a camera's pipeline from its *current* clip, so a reboot picks up a switch.

    Lifecycle, and why: a camera's shared media is created for its first viewer and the
    server then *holds* it (an extra prepare reference, taken as soon as it is prepared).
    Letting GstRtspServer unprepare the media itself when the last viewer leaves is racy: a
    viewer connecting at that moment is handed the dying media from the factory's cache and
    gets "503 Service Unavailable". Instead, ``LINGER_S`` after the last viewer left (or at
    a stop, codec switch or exit) the factory's cache key is changed first (``generation``),
    so new viewers get a fresh media and never the dying one, and only then is the hold
    dropped.
    """

    def __init__(self, cam: Camera, pool: GstRtspServer.RTSPThreadPool) -> None:
        super().__init__()
        self.cam = cam
        self.pool = pool
        self.generation = 0
        self.set_shared(True)
        if cam.transport == "tcp_only":
            self.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
        elif cam.transport == "udp_only":
            self.set_protocols(GstRtsp.RTSPLowerTrans.UDP)
        self.connect("media-configure", self._on_media_configure)

    def do_gen_key(self, url: GstRtsp.RTSPUrl) -> str:
        return f"{self.cam.path}#{self.generation}"

    def do_create_element(self, url: GstRtsp.RTSPUrl) -> Gst.Element:
        clip = self.cam.clip
        pay = VIDEO_CODECS[clip.codec][2]
        desc = (
            "( appsrc name=vsrc is-live=true format=time do-timestamp=false "
            f"min-latency=0 max-bytes=0 ! {pay} name=pay0 pt=96 config-interval=0 "
        )
        if clip.audio:
            desc += (
                "appsrc name=asrc is-live=true format=time do-timestamp=false "
                "min-latency=0 max-bytes=0 ! rtpmp4gpay name=pay1 pt=97 "
            )
        return Gst.parse_launch(desc + ")")

    def _on_media_configure(
        self, _factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia
    ) -> None:
        # Runs in a client thread: touch only GStreamer objects here, hand the feeder to
        # the main loop (which owns every Python-side structure) with idle_add.
        cam = self.cam
        feeder = Feeder(cam, media, cam.clip)

        def register() -> bool:
            if feeder.alive:
                if feeder.clip is not cam.clip and feeder.clip.codec == cam.clip.codec:
                    feeder.switch(cam.clip)  # a switch came in while this was being built
                cam.feeders.add(feeder)
                feeder.start()
            return False

        def unregister() -> bool:
            feeder.stop()
            cam.feeders.discard(feeder)
            return False

        def prepared(media: GstRtspServer.RTSPMedia) -> None:
            # Still in the preparing client's thread, before it can go away: take the
            # reference that keeps the media alive (see the class docstring).
            if feeder.held or not feeder.alive:
                return
            ctx = GstRtspServer.RTSPContext()  # a MEDIA thread does not use it
            thread = self.pool.get_thread(GstRtspServer.RTSPThreadType.MEDIA, ctx)
            feeder.held = thread is not None and media.prepare(thread)

        def unprepared(_media: GstRtspServer.RTSPMedia) -> None:
            feeder.alive = False
            GLib.idle_add(unregister)

        media.connect("prepared", prepared)
        media.connect("unprepared", unprepared)
        GLib.idle_add(register)


# --------------------------------------------------------------------------- server


class Simulator:
    def __init__(
        self, config: dict[str, Any], bind: str, port: int, control_stdin: bool = True
    ) -> None:
        self.loop = GLib.MainLoop()
        self.control_stdin = control_stdin
        self.clips: dict[tuple[str, str, bool], Clip] = {}
        self.cameras: dict[str, Camera] = {}
        self.server = GstRtspServer.RTSPServer()
        self.server.set_address(bind)
        self.server.set_service(str(port))
        self.mounts = self.server.get_mount_points()
        self.exit_code = 0
        self.linger = float(config.get("linger", LINGER_S))
        cams = config.get("cameras")
        if not isinstance(cams, list) or not cams:
            raise SimError("configuration has no cameras")
        roles: dict[tuple[str, str], str] = {}
        for spec in cams:
            cam = self._make_camera(spec)
            if cam.username is not None:
                creds = (cam.username, cam.password or "")
                cam.role = roles.setdefault(creds, f"user{len(roles)}")
            self.cameras[cam.name] = cam
        if roles:
            self.server.set_auth(self._make_auth(roles))
        for cam in self.cameras.values():
            cam.factory = CameraFactory(cam, self.server.get_thread_pool())
            if roles:
                # Everyone may *see* every camera (GstRtspServer answers 404 to a role
                # without access), only the camera's own login may *construct* it (401 with
                # a Basic challenge otherwise), which is what a real camera answers.
                for role in ("anonymous", *roles.values()):
                    perms = Gst.Structure.new_empty(role)
                    perms.set_value("media.factory.access", True)
                    perms.set_value("media.factory.construct", role == cam.role)
                    cam.factory.add_role_from_structure(perms)
            self.mounts.add_factory(cam.path, cam.factory)

    def _make_camera(self, spec: dict[str, Any]) -> Camera:
        name = str(spec.get("name", ""))
        if not name or "/" in name or name in self.cameras:
            raise SimError(f"bad or duplicate camera name {name!r}")
        transport = str(spec.get("transport", "any"))
        if transport not in ("any", "tcp_only", "udp_only"):
            raise SimError(f"{name}: bad transport {transport!r}")
        username = spec.get("username")
        password = spec.get("password")
        clip = self.get_clip(spec.get("clip") or {})
        return Camera(
            name,
            clip,
            transport,
            None if username is None else str(username),
            None if password is None else str(password),
        )

    @staticmethod
    def _make_auth(roles: dict[tuple[str, str], str]) -> GstRtspServer.RTSPAuth:
        """Basic auth; anonymous users get the role that open cameras grant."""
        auth = GstRtspServer.RTSPAuth()
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
        anon = GstRtspServer.RTSPToken()
        anon.set_string("media.factory.role", "anonymous")
        auth.set_default_token(anon)
        for (user, password), role in roles.items():
            token = GstRtspServer.RTSPToken()
            token.set_string("media.factory.role", role)
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        return auth

    def get_clip(self, spec: dict[str, Any]) -> Clip:
        key = clip_key(spec)
        clip = self.clips.get(key)
        if clip is None:
            clip = load_clip(*key)
            self.clips[key] = clip
        return clip

    def serve(self) -> int:
        if self.server.attach(None) == 0:
            raise SimError(
                f"cannot listen on {self.server.get_address()}:{self.server.get_service()}"
            )
        pool = self.server.get_session_pool()
        GLib.timeout_add_seconds(2, lambda: pool.cleanup() >= 0)
        GLib.timeout_add(1000, self._drop_idle_pipelines)
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, self.quit, "SIGTERM")
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, self.quit, "SIGINT")
        if self.control_stdin:
            threading.Thread(target=self._read_stdin, name="stdin", daemon=True).start()
        emit(
            "ready",
            port=self.server.get_bound_port(),
            address=self.server.get_address(),
            cameras=[c.state() for c in self.cameras.values()],
        )
        self.loop.run()
        self._shutdown()
        return self.exit_code

    def quit(self, why: str = "") -> bool:
        if why:
            log(f"exiting: {why}")
        self.loop.quit()
        return False

    def _shutdown(self) -> None:
        for cam in self.cameras.values():
            for feeder in list(cam.feeders):
                feeder.stop()
        self.server.client_filter(lambda *_: GstRtspServer.RTSPFilterResult.REMOVE)
        self.server.get_session_pool().filter(lambda *_: GstRtspServer.RTSPFilterResult.REMOVE)
        for cam in self.cameras.values():
            for feeder in list(cam.feeders):
                feeder.release()

    def _drop_idle_pipelines(self) -> bool:
        """Tear down pipelines that have had no viewer (session) for ``LINGER_S``."""
        used: set[GstRtspServer.RTSPMedia] = set()

        def collect(
            _pool: GstRtspServer.RTSPSessionPool, session: GstRtspServer.RTSPSession
        ) -> GstRtspServer.RTSPFilterResult:
            used.update(sm.get_media() for sm in session.filter(None))
            return GstRtspServer.RTSPFilterResult.KEEP

        self.server.get_session_pool().filter(collect)
        now = time.monotonic()
        for cam in self.cameras.values():
            for feeder in list(cam.feeders):
                if not feeder.held or feeder.media in used:
                    feeder.idle_since = None
                elif feeder.idle_since is None:
                    feeder.idle_since = now
                elif now - feeder.idle_since >= self.linger:
                    assert cam.factory is not None
                    cam.factory.generation += 1  # first: nobody new may join it
                    feeder.drop_hold()
        return True

    # ---- control channel

    def _read_stdin(self) -> None:
        for line in sys.stdin:
            if line.strip():
                GLib.idle_add(self._handle_line, line)
        GLib.idle_add(self.quit, "stdin closed")

    def _handle_line(self, line: str) -> bool:
        req_id: Any = None
        try:
            cmd = self._parse(line)
            req_id = cmd.get("id")
            name = str(cmd.get("cmd", ""))
            handler = getattr(self, f"cmd_{name}", None)
            if handler is None:
                raise SimError(f"unknown command {name!r}")
            result = handler(cmd)
            if result is not None:  # None: the handler replies later
                emit("ok", id=req_id, cmd=name, **result)
        except SimError as exc:
            emit("error", id=req_id, error=str(exc))
        except Exception as exc:  # a bug must not take every camera down
            log(f"command failed: {exc!r}")
            emit("error", id=req_id, error=f"internal error: {exc!r}")
        return False

    @staticmethod
    def _parse(line: str) -> dict[str, Any]:
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SimError(f"bad JSON: {exc}") from exc
            if not isinstance(obj, dict):
                raise SimError("a command must be a JSON object")
            return obj
        words = line.split()
        cmd: dict[str, Any] = {"cmd": words[0]}
        if len(words) > 1:
            cmd["camera"] = words[1]
        if words[0] == "switch":
            if len(words) < 4:
                raise SimError("usage: switch <camera> <clip.mp4> <h264|h265> [audio]")
            cmd["clip"] = {"path": words[2], "codec": words[3], "audio": "audio" in words[4:]}
        return cmd

    def _camera(self, cmd: dict[str, Any]) -> Camera:
        name = cmd.get("camera")
        cam = self.cameras.get(str(name))
        if cam is None:
            raise SimError(f"no camera {name!r}")
        return cam

    def _kick(self, cam: Camera) -> None:
        """Disconnect every viewer of ``cam`` and tear its pipeline down."""
        medias = {f.media for f in cam.feeders}
        if not medias:
            return

        def uses(session: GstRtspServer.RTSPSession) -> bool:
            return any(sm.get_media() in medias for sm in session.filter(None))

        def client_filter(
            _server: GstRtspServer.RTSPServer, client: GstRtspServer.RTSPClient
        ) -> GstRtspServer.RTSPFilterResult:
            if any(uses(s) for s in client.session_filter(None)):
                return GstRtspServer.RTSPFilterResult.REMOVE
            return GstRtspServer.RTSPFilterResult.KEEP

        def session_filter(
            _pool: GstRtspServer.RTSPSessionPool, session: GstRtspServer.RTSPSession
        ) -> GstRtspServer.RTSPFilterResult:
            if uses(session):
                return GstRtspServer.RTSPFilterResult.REMOVE
            return GstRtspServer.RTSPFilterResult.KEEP

        assert cam.factory is not None
        cam.factory.generation += 1  # new viewers get a new media, never this one
        self.server.client_filter(client_filter)
        self.server.get_session_pool().filter(session_filter)
        for feeder in list(cam.feeders):
            cam.feeders.discard(feeder)
            feeder.release()

    def cmd_list(self, _cmd: dict[str, Any]) -> dict[str, Any]:
        return {"cameras": [c.state() for c in self.cameras.values()]}

    def cmd_stop(self, cmd: dict[str, Any]) -> dict[str, Any]:
        cam = self._camera(cmd)
        if not cam.stopped:
            cam.stopped = True
            self.mounts.remove_factory(cam.path)
            self._kick(cam)
        return {"camera": cam.name}

    def cmd_start(self, cmd: dict[str, Any]) -> dict[str, Any]:
        cam = self._camera(cmd)
        if cam.stopped:
            cam.stopped = False
            self.mounts.add_factory(cam.path, cam.factory)
        return {"camera": cam.name}

    def cmd_stall(self, cmd: dict[str, Any]) -> dict[str, Any]:
        cam = self._camera(cmd)
        cam.stalled = True
        return {"camera": cam.name}

    def cmd_unstall(self, cmd: dict[str, Any]) -> dict[str, Any]:
        cam = self._camera(cmd)
        cam.stalled = False
        return {"camera": cam.name}

    def cmd_switch(self, cmd: dict[str, Any]) -> None:
        cam = self._camera(cmd)
        spec = cmd.get("clip")
        if not isinstance(spec, dict):
            raise SimError("switch needs a clip")
        key = clip_key(spec)
        req_id = cmd.get("id")
        if key in self.clips:
            self._apply_switch(cam, self.clips[key], req_id)
            return None

        def load() -> None:
            # Loading takes a while for a long clip: do it off the main loop so the other
            # cameras keep their pace, then apply the switch on the main loop.
            try:
                clip = load_clip(*key)
            except Exception as exc:
                message = str(exc)

                def fail() -> bool:
                    emit("error", id=req_id, error=message)
                    return False

                GLib.idle_add(fail)
                return

            def apply() -> bool:
                self.clips.setdefault(key, clip)
                self._apply_switch(cam, self.clips[key], req_id)
                return False

            GLib.idle_add(apply)

        threading.Thread(target=load, name="load-clip", daemon=True).start()
        return None

    def _apply_switch(self, cam: Camera, clip: Clip, req_id: Any) -> None:
        old = cam.clip
        cam.clip = clip
        in_place = clip.codec == old.codec and clip.audio == old.audio
        if in_place:
            for feeder in cam.feeders:
                feeder.switch(clip)
        else:
            self._kick(cam)  # a codec change is a camera reboot
        emit(
            "ok",
            id=req_id,
            cmd="switch",
            camera=cam.name,
            in_place=in_place,
            width=clip.width,
            height=clip.height,
            codec=clip.codec,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="JSON configuration file (default: first stdin line)")
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8554, help="RTSP port (0: any free port)")
    parser.add_argument(
        "--ignore-stdin",
        action="store_true",
        help="with --config: no control channel, run until SIGTERM/SIGINT (for services)",
    )
    args = parser.parse_args(argv)
    if args.ignore_stdin and not args.config:
        parser.error("--ignore-stdin needs --config")
    Gst.init(None)
    try:
        if args.config:
            with open(args.config, encoding="utf-8") as fh:
                config = json.load(fh)
        else:
            line = sys.stdin.readline()
            if not line:
                log("no configuration on stdin")
                return 2
            config = json.loads(line)
        sim = Simulator(config, args.bind, args.port, control_stdin=not args.ignore_stdin)
        return sim.serve()
    except (SimError, OSError, ValueError, GLib.Error) as exc:
        emit("fatal", error=str(exc))
        log(f"fatal: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
