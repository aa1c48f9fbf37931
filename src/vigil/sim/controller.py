"""Python API of the camera simulator, for the demo, the tests and the benchmarks.

``Simulator`` prepares each camera's clip (``vigil.sim.media``, cached), then runs the RTSP
server script ``rtsp_server.py`` under the *system* interpreter, because GStreamer's Python
bindings exist only there, and drives it over a JSON-lines pipe::

    with Simulator() as sim:
        sim.start([SimCamera("door", source="vtest"), SimCamera("yard", codec="h265")])
        url = sim.url("door")          # rtsp://127.0.0.1:PORT/door
        sim.stall("door")              # connection stays up, no packets
        sim.unstall("door")

The server process never outlives its controller: it exits when its stdin closes, which
happens when the controller closes it, is garbage-collected, or its process dies (even by
SIGKILL). ``close()`` additionally terminates and reaps it, so tests leave no orphans.
By default the server binds port 0 and reports the port the kernel chose, so there is no
race between picking a free port and binding it.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import logging
import os
import re
import socket
import subprocess
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal
from urllib.parse import quote

from vigil.sim.media import (
    ClipSpec,
    Codec,
    PreparedClip,
    ProgressCallback,
    parse_size,
    prepare_clip,
    prepare_clips,
)

log = logging.getLogger(__name__)

Transport = Literal["any", "tcp_only", "udp_only"]

#: The server script, run by the system Python that has the GStreamer bindings.
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
#: Override with ``$VIGIL_SIM_PYTHON`` (an interpreter with python3-gi and GstRtspServer).
SYSTEM_PYTHON = "/usr/bin/python3"

CAMERA_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_CLIP_FIELDS = (
    "source", "width", "height", "fps", "bitrate_kbps", "codec", "audio", "duration",
    "stamp", "gop_seconds",
)  # fmt: skip


class SimulatorError(RuntimeError):
    """The server failed to start, died, or refused a command."""


@dataclass
class SimCamera:
    """One simulated camera: what it shows, how it is encoded and how it can be reached.

    ``source`` is ``"vtest"`` (people walking), ``"tree"`` (a tree in the wind),
    ``"testsrc"`` (synthetic pattern with a clock) or a video file path. ``duration`` is the
    loop length. ``transport`` restricts the RTSP lower transport, because real cameras
    exist that refuse TCP (``udp_only``) or UDP (``tcp_only``). ``stamp`` burns the frame
    number into every frame (see ``vigil.sim.media``).
    """

    name: str
    source: str = "testsrc"
    width: int = 1280
    height: int = 720
    fps: float = 15.0
    bitrate_kbps: int = 2000
    codec: Codec = "h264"
    audio: bool = False
    username: str | None = None
    password: str | None = None
    transport: Transport = "any"
    stamp: bool = False
    duration: float = 10.0
    gop_seconds: float = 1.0

    def __post_init__(self) -> None:
        if not CAMERA_NAME_RE.match(self.name):
            raise ValueError(
                f"camera name {self.name!r}: use letters, digits, '_', '-', '.' (max 63)"
            )
        if self.transport not in ("any", "tcp_only", "udp_only"):
            raise ValueError(f"{self.name}: transport must be any, tcp_only or udp_only")
        if (self.username is None) != (self.password is None):
            raise ValueError(f"{self.name}: give both username and password, or neither")
        if self.username is not None and (not self.username or ":" in self.username):
            raise ValueError(f"{self.name}: username must be non-empty and contain no ':'")
        self.clip_spec()  # validates the encoding parameters early

    def clip_spec(self) -> ClipSpec:
        """The encoding parameters of this camera's clip."""
        return ClipSpec(**{f: getattr(self, f) for f in _CLIP_FIELDS})

    def with_clip_of(self, other: SimCamera) -> SimCamera:
        """This camera (name, credentials, transport) showing ``other``'s clip."""
        return dataclasses.replace(self, **{f: getattr(other, f) for f in _CLIP_FIELDS})

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], **defaults: Any) -> SimCamera:
        """Build from a YAML/JSON mapping; ``size: 1920x1080`` is accepted for width/height.

        Unknown keys are an error: a misspelt option silently ignored is a wasted run.
        """
        values = {**defaults, **data}
        size = values.pop("size", None)
        if size is not None:
            values["width"], values["height"] = parse_size(str(size))
        if "bitrate" in values:
            values["bitrate_kbps"] = values.pop("bitrate")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown camera option(s): {', '.join(unknown)}")
        return cls(**values)


def find_free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago.

    Another process can take it before you bind it; ``Simulator(port=0)`` (the default)
    avoids that race by letting the server bind port 0 and report its port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _reap(proc: subprocess.Popen[str]) -> None:
    """Stop the server: close its stdin (clean exit), then SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    for action, wait in ((None, 3.0), (proc.terminate, 3.0), (proc.kill, 5.0)):
        if action is not None:
            action()
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


class Simulator:
    """Runs simulated RTSP cameras in a child process; use as a context manager.

    ``host`` is the address to bind (``0.0.0.0`` to serve the LAN); ``port`` 0 picks a
    free one. ``progress`` receives human-readable lines while clips are encoded.
    ``linger`` is how long a camera's pipeline keeps running after its last viewer left:
    a viewer reconnecting within it joins the running stream mid-GOP, as with a real
    camera; later, a fresh pipeline starts (on a keyframe).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cache_dir: Path | str | None = None,
        progress: ProgressCallback | None = None,
        python: str | None = None,
        startup_timeout: float = 60.0,
        command_timeout: float = 30.0,
        linger: float = 5.0,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.progress = progress
        self.python = python or os.environ.get("VIGIL_SIM_PYTHON") or SYSTEM_PYTHON
        self.startup_timeout = startup_timeout
        self.command_timeout = command_timeout
        self.linger = linger
        self._proc: subprocess.Popen[str] | None = None
        #: The server's exit status once closed (0: it exited cleanly on stdin EOF).
        self.returncode: int | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._cameras: dict[str, SimCamera] = {}
        self._port = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self._ready: dict[str, Any] | None = None
        self._fatal: str | None = None
        self._next_id = 0
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=40)

    # ---- lifecycle

    def __enter__(self) -> Simulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def port(self) -> int:
        """The port the server listens on (valid after ``start``)."""
        if not self._port:
            raise SimulatorError("simulator not started")
        return self._port

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def cameras(self) -> dict[str, SimCamera]:
        """The cameras being served, by name, as currently configured (after switches)."""
        return dict(self._cameras)

    def prepare(self, cameras: Iterable[SimCamera]) -> list[PreparedClip]:
        """Encode (or find in the cache) the clips of ``cameras`` without serving them.

        Benchmarks call this ahead of time so encoding is not part of what they measure.
        """
        return prepare_clips(
            [c.clip_spec() for c in cameras], self.cache_dir, progress=self.progress
        )

    def start(self, cameras: Iterable[SimCamera]) -> Simulator:
        """Prepare the clips, start the server and wait until it accepts connections."""
        if self._proc is not None:
            raise SimulatorError("simulator already started")
        cams = list(cameras)
        if not cams:
            raise ValueError("no cameras to simulate")
        names = [c.name for c in cams]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate camera names: {', '.join(dupes)}")
        clips = self.prepare(cams)
        config = {
            "cameras": [
                {
                    "name": cam.name,
                    "clip": clip.server_config(),
                    "transport": cam.transport,
                    "username": cam.username,
                    "password": cam.password,
                }
                for cam, clip in zip(cams, clips, strict=True)
            ],
            "linger": self.linger,
        }
        if self.progress:
            self.progress(f"starting RTSP server for {len(cams)} camera(s)")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        cmd = [
            self.python, "-I", str(SERVER_SCRIPT),
            "--bind", self.host, "--port", str(self.requested_port),
        ]  # fmt: skip
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
                env=env,
                close_fds=True,
                # Own session: a terminal Ctrl-C reaches only the controller, which then
                # stops the server in order (and the server still exits on stdin EOF if
                # the controller is killed outright).
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise SimulatorError(
                f"{self.python} not found: the simulator needs the system Python with "
                "python3-gi and gir1.2-gst-rtsp-server-1.0"
            ) from exc
        self._proc = proc
        self._finalizer = weakref.finalize(self, _reap, proc)
        assert proc.stdout is not None and proc.stderr is not None
        threading.Thread(
            target=self._read_stdout, args=(proc.stdout,), name="sim-stdout", daemon=True
        ).start()
        threading.Thread(
            target=self._read_stderr, args=(proc.stderr,), name="sim-stderr", daemon=True
        ).start()
        try:
            self._write(json.dumps(config))
            ready = self._wait(lambda: self._ready, self.startup_timeout, "start")
        except BaseException:
            self.close()
            raise
        self._port = int(ready["port"])
        self._cameras = {c.name: c for c in cams}
        log.info("simulator serving %d camera(s) on port %d", len(cams), self._port)
        return self

    def close(self) -> None:
        """Stop the server and reap it. Idempotent; safe after a failed ``start``."""
        if self._finalizer is not None:
            self._finalizer()  # runs _reap once
            self._finalizer = None
        proc, self._proc = self._proc, None
        if proc is not None:
            self.returncode = proc.returncode
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()

    # ---- addresses

    def url(self, name: str, *, credentials: bool = False) -> str:
        """The camera's RTSP URL; with ``credentials=True`` the login is embedded."""
        cam = self._camera(name)
        host = self.host
        if host in ("0.0.0.0", ""):  # noqa: S104 - mapping a wildcard bind to loopback
            host = "127.0.0.1"
        elif ":" in host:
            host = "[::1]" if host == "::" else f"[{host}]"
        auth = ""
        if credentials and cam.username is not None:
            auth = f"{quote(cam.username, safe='')}:{quote(cam.password or '', safe='')}@"
        return f"rtsp://{auth}{host}:{self.port}/{quote(cam.name)}"

    def urls(self, *, credentials: bool = False) -> dict[str, str]:
        return {name: self.url(name, credentials=credentials) for name in self._cameras}

    # ---- faults

    def stop_camera(self, name: str) -> None:
        """Disconnect the camera's viewers and refuse new connections (RTSP 404)."""
        self._command("stop", name)

    def start_camera(self, name: str) -> None:
        """Serve a stopped camera again."""
        self._command("start", name)

    def stall(self, name: str) -> None:
        """Keep connections open but send no media packets until ``unstall``."""
        self._command("stall", name)

    def unstall(self, name: str) -> None:
        """Resume sending; video resumes at the next keyframe."""
        self._command("unstall", name)

    def switch(self, name: str, spec: SimCamera) -> dict[str, Any]:
        """Make camera ``name`` continue with the clip described by ``spec``.

        Only the clip fields of ``spec`` are used (source, size, fps, bitrate, codec, audio,
        duration, stamp); name, credentials and transport stay. With the same codec and
        audio layout the switch is in-band (``in_place`` true in the reply); otherwise the
        camera's viewers are disconnected, as when a real camera reboots after a change.
        """
        cam = self._camera(name)
        new = cam.with_clip_of(spec)
        clip = prepare_clip(new.clip_spec(), self.cache_dir, progress=self.progress)
        reply = self._command("switch", name, clip=clip.server_config())
        self._cameras[name] = new
        return reply

    def status(self) -> list[dict[str, Any]]:
        """The server's view of every camera: clip, size, ``stopped``, ``stalled``,
        ``pipelines`` (0 or 1 normally), and pacing statistics ``units_sent``,
        ``max_late_ms`` and ``resyncs`` that tell a benchmark whether the simulator itself
        kept up."""
        cams: list[dict[str, Any]] = self._command("list", None)["cameras"]
        return cams

    # ---- plumbing

    def _camera(self, name: str) -> SimCamera:
        try:
            return self._cameras[name]
        except KeyError:
            raise KeyError(f"no simulated camera {name!r}") from None

    def _command(self, cmd: str, camera: str | None, **extra: Any) -> dict[str, Any]:
        if camera is not None:
            self._camera(camera)
        with self._lock:
            self._next_id += 1
            req_id = self._next_id
            self._write(json.dumps({"id": req_id, "cmd": cmd, "camera": camera, **extra}))
        reply = self._wait(lambda: self._replies.pop(req_id, None), self.command_timeout, cmd)
        if reply.get("event") == "error":
            raise SimulatorError(f"{cmd} {camera or ''}: {reply.get('error')}")
        return reply

    def _write(self, line: str) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise SimulatorError("simulator not running")
        try:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError) as exc:
            raise SimulatorError(f"simulator is gone{self._diagnostics()}") from exc

    def _wait(self, get: Any, timeout: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = get()
                if value is not None:
                    return value  # type: ignore[no-any-return]
                if self._fatal is not None:
                    raise SimulatorError(f"simulator failed: {self._fatal}")
                proc = self._proc
                if proc is None or proc.poll() is not None:
                    raise SimulatorError(f"simulator exited during {what}{self._diagnostics()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SimulatorError(f"simulator: {what} timed out{self._diagnostics()}")
                self._cond.wait(min(left, 0.25))

    def _diagnostics(self) -> str:
        tail = "\n".join(self._stderr_tail)
        return f"\nserver stderr:\n{tail}" if tail else ""

    def _read_stdout(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                try:
                    msg = json.loads(line)
                except json.JSONDecodeError:
                    log.debug("sim server: %s", line.rstrip())
                    continue
                event = msg.get("event")
                with self._cond:
                    if event == "ready":
                        self._ready = msg
                    elif event == "fatal":
                        self._fatal = str(msg.get("error"))
                    elif event in ("ok", "error") and isinstance(msg.get("id"), int):
                        self._replies[msg["id"]] = msg
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass  # closed by close()
        with self._cond:
            self._cond.notify_all()

    def _read_stderr(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                line = line.rstrip()
                self._stderr_tail.append(line)
                log.debug("sim server: %s", line)
        except (OSError, ValueError):
            pass


__all__ = [
    "SERVER_SCRIPT",
    "SimCamera",
    "Simulator",
    "SimulatorError",
    "Transport",
    "find_free_port",
]
