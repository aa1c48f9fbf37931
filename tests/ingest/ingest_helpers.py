"""Test fixtures for ingest: generated media, a tiny HTTP server, fake RTSP servers, a real
GStreamer RTSP server in a subprocess, and a recording sink."""

from __future__ import annotations

import base64
import contextlib
import os
import random
import select
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from vigil.ingest.types import StreamSession, TimedPacket

FFMPEG = "ffmpeg"
HERE = Path(__file__).resolve().parent
SYSTEM_PYTHON = "/usr/bin/python3"


# --------------------------------------------------------------------------- media


def ffmpeg(*args: str) -> None:
    subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
        check=True,
        timeout=120,
    )


def make_clip(
    path: Path,
    *,
    size: str = "320x240",
    rate: int = 15,
    seconds: float = 2.0,
    codec: str = "libx264",
    audio: bool = False,
    fmt: str | None = None,
    gop: int = 15,
) -> Path:
    args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000"]
    args += ["-t", str(seconds), "-c:v", codec, "-pix_fmt", "yuv420p", "-g", str(gop)]
    if codec == "libx264":
        args += ["-preset", "ultrafast", "-bf", "2"]
    elif codec == "libx265":
        args += ["-preset", "ultrafast", "-x265-params", f"log-level=error:keyint={gop}"]
    if audio:
        args += ["-c:a", "aac", "-shortest"]
    if fmt:
        args += ["-f", fmt]
    ffmpeg(*args, str(path))
    return path


def make_jpegs(directory: Path, count: int = 10, size: str = "160x120") -> list[bytes]:
    directory.mkdir(parents=True, exist_ok=True)
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=10", "-frames:v", str(count),
        "-q:v", "5", str(directory / "f%03d.jpg"),
    )  # fmt: skip
    return [p.read_bytes() for p in sorted(directory.glob("f*.jpg"))]


# --------------------------------------------------------------------------- sink


@dataclass
class RecordingSink:
    """Records everything a reader hands to its sinks (thread-safe enough for tests)."""

    events: list[tuple[str, Any]] = field(default_factory=list)
    packets: list[tuple[int, TimedPacket]] = field(default_factory=list)
    sessions: list[StreamSession] = field(default_factory=list)
    ended: list[tuple[int, str]] = field(default_factory=list)
    seen_us: list[int] = field(default_factory=list)  # wall time each packet reached us
    cond: threading.Condition = field(default_factory=threading.Condition)
    keep_data: bool = True

    def session_started(self, session: StreamSession) -> None:
        with self.cond:
            self.sessions.append(session)
            self.events.append(("start", session.session_id))
            self.cond.notify_all()

    def packet(self, session: StreamSession, pkt: TimedPacket) -> None:
        with self.cond:
            if not self.keep_data:
                pkt = TimedPacket(
                    pkt.kind, b"", pkt.pts_us, pkt.dts_us, pkt.duration_us, pkt.wall_us,
                    pkt.keyframe,
                )  # fmt: skip
            self.packets.append((session.session_id, pkt))
            self.seen_us.append(time.time_ns() // 1000)
            self.cond.notify_all()

    def session_ended(self, session: StreamSession, reason: str) -> None:
        with self.cond:
            self.ended.append((session.session_id, reason))
            self.events.append(("end", session.session_id))
            self.cond.notify_all()

    def wait_for(self, predicate: Any, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self), timeout)

    def packets_of(self, session_id: int, kind: str | None = None) -> list[TimedPacket]:
        with self.cond:
            return [
                p for s, p in self.packets if s == session_id and (kind is None or p.kind == kind)
            ]


def wait_until(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def free_port() -> int:
    """A port that nothing listens on (bound then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- HTTP


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # silence
        pass

    def do_GET(self) -> None:
        srv = self.server
        path = self.path.split("?")[0]
        srv.requests.append((path, self.headers.get("Authorization")))
        if path == "/mjpeg":
            self._mjpeg(srv.jpegs)
        elif path == "/mjpeg-switch":  # 10 frames at one size, then another size
            self._mjpeg(srv.jpegs[:10] + srv.jpegs2, loop_from=10)
        elif path == "/mjpeg-stall":  # 10 frames, then silence with the socket open
            self._mjpeg(srv.jpegs[:10], once=True)
            srv.stop.wait(30)
        elif path == "/garbage":
            body = random.Random(1).randbytes(300_000)
            self._send(200, "application/octet-stream", body)
        elif path == "/notvideo":
            self._send(200, "text/html", b"<html><body>" + b"hello " * 2000 + b"</body></html>")
        elif path == "/auth":
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="vigil-test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/silent":
            srv.stop.wait(30)  # accept, read the request, never answer
        elif path == "/ts" and srv.ts_file is not None:
            self._send(200, "video/mp2t", srv.ts_file.read_bytes())
        else:
            self._send(404, "text/plain", b"not found")

    def _send(self, code: int, ctype: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)

    def _mjpeg(self, frames: list[bytes], *, loop_from: int = 0, once: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace;boundary=vigilframe")
        self.end_headers()
        i = 0
        try:
            while not self.server.stop.is_set():
                if once and i >= len(frames):
                    return
                if i < len(frames):
                    frame = frames[i]
                else:
                    frame = frames[loop_from + (i - loop_from) % (len(frames) - loop_from)]
                self.wfile.write(
                    b"--vigilframe\r\nContent-Type: image/jpeg\r\n"
                    + f"Content-Length: {len(frame)}\r\n\r\n".encode()
                    + frame
                    + b"\r\n"
                )
                self.wfile.flush()
                i += 1
                if self.server.stop.wait(0.1):
                    break
        except OSError:
            pass


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, jpegs: list[bytes], ts_file: Path | None, jpegs2: list[bytes] | None = None
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.jpegs = jpegs
        self.jpegs2 = jpegs2 or jpegs
        self.ts_file = ts_file
        self.stop = threading.Event()
        self.requests: list[tuple[str, str | None]] = []


@contextlib.contextmanager
def http_server(
    jpegs: list[bytes], ts_file: Path | None = None, jpegs2: list[bytes] | None = None
) -> Iterator[_HttpServer]:
    srv = _HttpServer(jpegs, ts_file, jpegs2)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.stop.set()
        srv.shutdown()
        srv.server_close()
        t.join(5)


# --------------------------------------------------------------------------- fake RTSP


class FakeRtspServer:
    """Misbehaving RTSP servers. Modes:

    * ``"401"``: OPTIONS 200, DESCRIBE 401 (Basic) whatever the credentials; records the
      decoded Authorization headers it receives.
    * ``"404"``: DESCRIBE 404.
    * ``"silent"``: accepts TCP connections and never says anything.
    * ``"garbage"``: answers the first request with random bytes.
    """

    def __init__(self, mode: str, tls: ssl.SSLContext | None = None) -> None:
        self.mode = mode
        self.tls = tls
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.auth_headers: list[str] = []
        self.connections = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._accept = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept.start()

    @property
    def url(self) -> str:
        scheme = "rtsps" if self.tls is not None else "rtsp"
        return f"{scheme}://127.0.0.1:{self.port}/stream"

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if not r:
                continue
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        if self.tls is not None:
            conn.settimeout(5)
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except OSError:
                return
        conn.settimeout(0.1)
        try:
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(4096)
                except TimeoutError:
                    continue
                if not chunk:
                    return
                if self.mode == "silent":
                    continue
                buf += chunk
                while b"\r\n\r\n" in buf:
                    head, buf = buf.split(b"\r\n\r\n", 1)
                    self._answer(conn, head.decode("latin-1"))
        except OSError:
            return

    def _answer(self, conn: socket.socket, head: str) -> None:
        lines = head.split("\r\n")
        method = lines[0].split(" ")[0]
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        cseq = headers.get("cseq", "1")
        auth = headers.get("authorization")
        if auth and auth.lower().startswith("basic "):
            self.auth_headers.append(base64.b64decode(auth[6:]).decode("utf-8", "replace"))
        elif auth:
            self.auth_headers.append(auth)
        if self.mode == "garbage":
            conn.sendall(random.Random(2).randbytes(20_000))
            return
        if method == "OPTIONS":
            conn.sendall(
                f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n"
                "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n".encode()
            )
        elif self.mode == "401":
            conn.sendall(
                f"RTSP/1.0 401 Unauthorized\r\nCSeq: {cseq}\r\n"
                'WWW-Authenticate: Basic realm="vigil-test"\r\n\r\n'.encode()
            )
        else:
            conn.sendall(f"RTSP/1.0 404 Not Found\r\nCSeq: {cseq}\r\n\r\n".encode())

    def close(self) -> None:
        self._stop.set()
        self._accept.join(2)
        with contextlib.suppress(OSError):
            self.sock.close()
        for c in self._conns:
            with contextlib.suppress(OSError):
                c.close()
        for t in self._threads:
            t.join(2)

    def __enter__(self) -> FakeRtspServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def self_signed_tls(directory: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate (cameras use those)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vigil-test-camera")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


# --------------------------------------------------------------------------- real RTSP


class GstRtspServer:
    """A GStreamer RTSP server in a subprocess (system python with gi)."""

    def __init__(self, port: int = 0, *, codec: str = "h264", audio: bool = False,
                 user: str | None = None, password: str | None = None,
                 size: str = "320x240") -> None:  # fmt: skip
        self.codec, self.audio, self.user, self.password = codec, audio, user, password
        self.size = size
        self.port = port
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/stream"

    def start(self, timeout: float = 20.0) -> None:
        cmd = [SYSTEM_PYTHON, str(HERE / "gst_rtsp_server.py"), "--port", str(self.port),
               "--codec", self.codec, "--size", self.size]  # fmt: skip
        if self.audio:
            cmd.append("--audio")
        if self.user:
            cmd += ["--user", self.user, "--password", self.password or ""]
        env = dict(os.environ, GST_DEBUG="0")
        env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                line = self.proc.stdout.readline()
                if line.startswith("READY"):
                    self.port = int(line.split()[1])
                    return
                if not line:
                    break
        self.stop()
        raise RuntimeError("GStreamer RTSP server did not start")

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open, no data flows."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        p = self.proc
        if p is None:
            return
        self.proc = None
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(signal.SIGCONT)
            p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        if p.stdout is not None:
            p.stdout.close()

    def __enter__(self) -> GstRtspServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def have_gst_rtsp() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    r = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
         "from gi.repository import GstRtspServer"],
        capture_output=True, timeout=30,
    )  # fmt: skip
    return r.returncode == 0


__all__ = [
    "FakeRtspServer",
    "GstRtspServer",
    "RecordingSink",
    "free_port",
    "have_gst_rtsp",
    "http_server",
    "make_clip",
    "make_jpegs",
    "self_signed_tls",
    "wait_until",
]
