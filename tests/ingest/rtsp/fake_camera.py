"""A scripted RTSP camera on a loopback port, for the failure modes a real server will not
produce on demand: garbage, silence, 401 loops, stalls, server-side closes, keep-alive
answers interleaved with media.

Each connection runs in its own thread. The server answers OPTIONS, DESCRIBE, SETUP, PLAY,
GET_PARAMETER and TEARDOWN like a camera; the test scripts the exceptions (``statuses``,
``auth``, ``garbage``, ``silent``) and what happens after PLAY (``stream``). Everything
received is recorded in ``requests``.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.ingest.rtsp.rtp import interleaved, rtp

H264_SDP = (
    "v=0\r\n"
    "o=- 1 1 IN IP4 127.0.0.1\r\n"
    "s=fake\r\n"
    "t=0 0\r\n"
    "a=control:*\r\n"
    "m=video 0 RTP/AVP 96\r\n"
    "a=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 packetization-mode=1;"
    "sprop-parameter-sets=Z01ADdoFB+wEQAAAAwBAAAAHg8UKqA==,aO88gA==\r\n"
    "a=framerate:15\r\n"
    "a=control:trackID=1\r\n"
)


@dataclass
class Request:
    method: str
    url: str
    headers: dict[str, str]
    raw: str


class ServerConn:
    """The server side of one connection."""

    def __init__(self, sock: socket.socket, stop: threading.Event) -> None:
        self.sock = sock
        self.stop = stop
        self.buf = b""

    def read_request(self, timeout: float) -> Request | None:
        """The next request, or None if none arrived within ``timeout``. EOFError when the
        client closed."""
        while b"\r\n\r\n" not in self.buf:
            r, _, _ = select.select([self.sock], [], [], timeout)
            if not r:
                return None
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        text = head.decode("utf-8", "replace")
        lines = text.split("\r\n")
        method, url, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return Request(method, url, headers, text)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(
        self,
        req: Request,
        status: int = 200,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        reason: str = "OK",
    ) -> bytes:
        lines = [f"RTSP/1.0 {status} {reason}", f"CSeq: {req.headers.get('cseq', '0')}"]
        lines += [f"{k}: {v}" for k, v in headers or []]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        self.send(data)
        return data


StreamFn = Callable[[ServerConn, "FakeCamera"], None]
AuthFn = Callable[[Request], list[str] | None]  # None: authorized; else challenges


@dataclass
class FakeCamera:
    sdp: str = H264_SDP
    public: str = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER"
    session_timeout: int | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    auth: AuthFn | None = None
    stream: StreamFn | None = None
    garbage: bytes | None = None  # answered to the first request, instead of RTSP
    silent: bool = False  # accept and read, never answer
    requests: list[Request] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        self.stop = threading.Event()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = int(self.listener.getsockname()[1])
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._accept = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept.start()

    def url(self, userinfo: str = "", path: str = "/cam") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"rtsp://{at}127.0.0.1:{self.port}{path}"

    def methods(self) -> list[str]:
        return [r.method for r in self.requests]

    def _accept_loop(self) -> None:
        while not self.stop.is_set():
            r, _, _ = select.select([self.listener], [], [], 0.05)
            if not r:
                continue
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self._socks.append(sock)
            t = threading.Thread(target=self._serve, args=(ServerConn(sock, self.stop),))
            t.daemon = True
            t.start()
            self._threads.append(t)

    def _serve(self, conn: ServerConn) -> None:
        try:
            while not self.stop.is_set():
                req = conn.read_request(0.05)
                if req is None:
                    continue
                self.requests.append(req)
                if self.silent:
                    continue
                if self.garbage is not None:
                    conn.send(self.garbage)
                    continue
                if self._answer(conn, req):
                    return
        except (EOFError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.sock.close()

    def _answer(self, conn: ServerConn, req: Request) -> bool:
        """Answer one request; True when the connection should end."""
        status = self.statuses.get(req.method)
        if status is not None:
            conn.reply(req, status, reason="Scripted")
            return False
        if self.auth is not None and req.method != "OPTIONS":
            challenges = self.auth(req)
            if challenges is not None:
                conn.reply(
                    req, 401, [("WWW-Authenticate", c) for c in challenges], reason="Unauthorized"
                )
                return False
        session = "12345678" + (
            f";timeout={self.session_timeout}" if self.session_timeout is not None else ""
        )
        if req.method == "OPTIONS":
            conn.reply(req, 200, [("Public", self.public)])
        elif req.method == "DESCRIBE":
            base = req.url.rstrip("/") + "/"
            conn.reply(
                req,
                200,
                [("Content-Type", "application/sdp"), ("Content-Base", base)],
                self.sdp.encode(),
            )
        elif req.method == "SETUP":
            conn.reply(req, 200, [("Session", session), ("Transport", req.headers["transport"])])
        elif req.method == "PLAY":
            conn.reply(req, 200, [("Session", session), ("Range", "npt=0.000-")])
            if self.stream is not None:
                self.stream(conn, self)
                return True
        else:  # GET_PARAMETER, TEARDOWN, ...
            conn.reply(req, 200, [("Session", session)])
        return False

    def close(self) -> None:
        self.stop.set()
        self._accept.join(2)
        with contextlib.suppress(OSError):
            self.listener.close()
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        for t in self._threads:
            t.join(2)

    def __enter__(self) -> FakeCamera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- media


def h264_frame(seq: int, index: int, *, channel: int = 0, size: int = 300) -> bytes:
    """Frame ``index`` as one interleaved single-NAL packet with the marker bit: an IDR
    slice every 15 frames, otherwise a non-IDR slice; first_mb_in_slice = 0."""
    ntype = 5 if index % 15 == 0 else 1
    nal = bytes([0x60 | ntype, 0x88]) + bytes([index & 0xFF]) * size
    return interleaved(channel, rtp(seq, index * 6000, nal, marker=True))


def send_frames(conn: ServerConn, count: int, *, first: int = 0, pause: float = 0.0) -> None:
    for i in range(first, first + count):
        conn.send(h264_frame(i, i))
        if pause and conn.stop.wait(pause):
            return
