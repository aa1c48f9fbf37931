"""An RTSP/1.0 client session over one blocking TCP socket, media interleaved (RTP over
the RTSP connection, RFC 2326 10.12).

Why our own client: FFmpeg's RTSP-over-TCP demuxer makes three unbuffered reads (each a
poll and a recv system call) per RTP packet and runs the H.264 parser over every byte,
which costs more CPU than a whole recorder may use. Here one ``recv_into`` fills a 256 KiB
buffer with as many packets as the kernel has queued, ``$``-framed packets are cut out by
index arithmetic on that buffer, and each is handed to its track's depacketizer as a
memoryview range. After PLAY the socket is blocking with a kernel receive timeout
(``SO_RCVTIMEO``), so a read is a single system call; Python's own socket timeouts would
add a poll before each one.

Session: connect, OPTIONS (learns whether GET_PARAMETER is available for keep-alives),
DESCRIBE (answers one authentication challenge, and one ``stale=true`` retry), SETUP of the
first video medium and, when asked, the first AAC/PCMU/PCMA audio medium, with
``RTP/AVP/TCP;unicast;interleaved=...``, then PLAY. The whole handshake is bounded by
``open_timeout``. While streaming: a keep-alive every half session timeout, sent from the
reading thread; no RTP packet of a set-up track for ``stall_timeout`` is a stall (keep-alive
answers and RTCP do not count: a camera whose encoder hung still answers those); RTSP
messages arriving between media packets are parsed and dropped; anything else is garbage.
TEARDOWN on close.

Threads: one reading thread owns the client. :meth:`RtspClient.interrupt` may be called from
any other thread at any time (before, during, after open, after close): it sets a flag and
shuts the socket down, which wakes a blocked connect, poll or recv at once; the reading
thread then raises ``IngestError("stopped")``.

Secrets: request URLs never contain userinfo (credentials only feed the Authorization
header); no exception message, log line or repr contains the URL with credentials, the
password or an Authorization header. Sources are named by their display URL.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from vigil.ingest.errors import MESSAGES, IngestError
from vigil.ingest.rtsp import netio
from vigil.ingest.rtsp.auth import Authenticator, UnsupportedChallenge, choose, is_stale
from vigil.ingest.rtsp.auth import parse_challenges as _parse_challenges
from vigil.ingest.rtsp.depacketize import AccessUnit, Depacketizer, codec_name, for_media
from vigil.ingest.rtsp.errors import (
    NativeUnsupported,
    connect_error,
    sanitize_reason,
    status_error,
)
from vigil.ingest.rtsp.message import (
    MAX_HEAD_BYTES,
    Message,
    MessageError,
    build_request,
    could_be_message,
    head_end,
    parse_channels,
    parse_head,
    parse_public,
    parse_session,
    parse_transport,
)
from vigil.ingest.rtsp.sdp import (
    MediaDescription,
    SdpError,
    SessionDescription,
    parse_sdp,
)
from vigil.ingest.rtsp.stats import RtspStats
from vigil.ingest.source import display_url

log = logging.getLogger("vigil.ingest.rtsp")

BUFFER_SIZE = 256 * 1024
# compact the buffer when less than one maximal interleaved frame fits behind the data
_MIN_FREE = 4 + 0xFFFF + 1
DEFAULT_PORT = 554
DEFAULT_SESSION_TIMEOUT = 60.0
# cooperative reading (units(cooperative=True)): the track index yielded for "no more bytes
# now, resume me by wake_at", with a placeholder unit
WAIT = -1
NO_UNIT = AccessUnit(b"", 0, False)
# full buffers read in a row before a cooperative reader yields to the other cameras
_MAX_READS_PER_TURN = 8
MIN_KEEPALIVE_INTERVAL = 0.5
TEARDOWN_TIMEOUT = 0.5
USER_AGENT = "vigil"
_MEDIA_PROTOCOLS = ("RTP/AVP", "RTP/AVPF")
# audio SETUP failures that leave the video worth reading
_AUDIO_SKIPPABLE = frozenset({"protocol", "not_found", "forbidden"})


@dataclass(slots=True)
class Track:
    """One set-up medium: its SDP description, FFmpeg codec name, the interleaved channel
    its RTP arrives on, and its depacketizer. ``index`` is its position in
    :attr:`RtspClient.tracks` (the video track is always 0)."""

    index: int
    media: MediaDescription
    codec: str
    channel: int
    depacketizer: Depacketizer


class RtspClient:
    """One RTSP session. See the module docstring. Not reusable: one instance, one
    connection; after an error or :meth:`close`, make a new one."""

    def __init__(
        self,
        url: str,
        *,
        display: str = "",
        open_timeout: float,
        stall_timeout: float,
        audio: bool = True,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.source = display_url(display or url)
        self.open_timeout = float(open_timeout)
        self.stall_timeout = float(stall_timeout)
        self.want_audio = audio
        self.user_agent = user_agent
        self.stats = RtspStats()
        self.tracks: list[Track] = []
        self.public: frozenset[str] = frozenset()
        self.session_timeout = DEFAULT_SESSION_TIMEOUT
        self._lock = threading.Lock()
        self._interrupted = False
        self._closed = False
        self._sock: socket.socket | None = None
        self._buf = bytearray(BUFFER_SIZE)
        self._mv = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self._cseq = 0
        self._auth: Authenticator | None = None
        self._session: str | None = None
        self._control = ""
        self._playing = False
        self._opened = False
        # cooperative reading: resume the units() generator by this monotonic time
        self.wake_at = 0.0
        self._parse_url(url)

    def __repr__(self) -> str:
        return f"<RtspClient {self.source}>"

    # -- URL ----------------------------------------------------------------------------

    def _parse_url(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise IngestError("config", "malformed URL", source=self.source) from None
        scheme = parts.scheme.lower()
        if scheme != "rtsp":
            raise NativeUnsupported(
                f"the native RTSP client reads rtsp:// only, not {scheme}://", source=self.source
            )
        host = parts.hostname or ""
        if not host:
            raise IngestError("config", "URL has no host", source=self.source)
        self.host = host
        self.port = port or DEFAULT_PORT
        self._user: str | None = unquote(parts.username) if parts.username is not None else None
        self._password = unquote(parts.password) if parts.password is not None else ""
        hostport = f"[{host}]" if ":" in host else host
        if port is not None:
            hostport += f":{port}"
        # the request URL: never any userinfo
        self.url = urlunsplit((scheme, hostport, parts.path or "/", parts.query, ""))

    # -- public API -----------------------------------------------------------------------

    @property
    def playing(self) -> bool:
        return self._playing

    def interrupt(self) -> None:
        """Make the reading thread's current or next blocking call fail promptly with
        ``IngestError("stopped")``. Safe from any thread, at any time, repeatedly."""
        with self._lock:
            self._interrupted = True
            sock = self._sock
            if sock is not None:  # under the lock: close() cannot free the fd meanwhile
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def fileno(self) -> int:
        """The socket's descriptor (-1 before connect or after close)."""
        sock = self._sock
        return sock.fileno() if sock is not None else -1

    def close(self) -> None:
        """Send TEARDOWN (best effort, short timeout, errors ignored) and close. Idempotent;
        a reading thread still blocked elsewhere is woken and raises "stopped"."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            was_interrupted = self._interrupted
            self._interrupted = True
            sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            if self._session is not None and not was_interrupted:
                self._cseq += 1
                url = self._control
                request = build_request("TEARDOWN", url, self._cseq, self._headers("TEARDOWN", url))
                sock.settimeout(TEARDOWN_TIMEOUT)
                sock.sendall(request)
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def open(self) -> None:
        """Connect and run the handshake up to PLAY. Raises :class:`IngestError` (or
        :class:`NativeUnsupported`); the caller closes the client either way."""
        if self._opened:
            raise RuntimeError("an RtspClient opens once")
        self._opened = True
        deadline = time.monotonic() + self.open_timeout
        self._connect(deadline)
        options = self._authorized("OPTIONS", self.url, deadline)
        if 200 <= options.status < 300:  # others: only Public is lost, keep going
            self.public = parse_public(options.get("public"))
        sdp = self._describe(deadline)
        self._control = sdp.control
        for media in self._pick_media(sdp):
            self._setup_track(media, deadline)
        play = self._request("PLAY", self._control, deadline, [("Range", "npt=0.000-")])
        session = play.get("session")
        if session:
            _, timeout = parse_session(session)
            if timeout is not None:
                self.session_timeout = timeout
        self._playing = True

    def _describe(self, deadline: float) -> SessionDescription:
        answer = self._request("DESCRIBE", self.url, deadline, [("Accept", "application/sdp")])
        if not answer.body:
            raise IngestError("invalid_data", "DESCRIBE answer has no body", source=self.source)
        try:
            return parse_sdp(
                answer.body,
                request_url=self.url,
                content_base=answer.get("content-base"),
                content_location=answer.get("content-location"),
            )
        except SdpError as exc:
            raise IngestError(
                "invalid_data", f"bad session description: {exc}", source=self.source
            ) from None

    def _pick_media(self, sdp: SessionDescription) -> list[MediaDescription]:
        """The first video medium (which must be H.264/H.265 over plain RTP) and, if audio
        is wanted, the first audio medium with a codec we can depacketize."""
        video = sdp.first("video")
        if video is None:
            raise IngestError("not_video", MESSAGES["not_video"], source=self.source)
        if codec_name(video) is None:
            raise NativeUnsupported(
                f"video codec {video.encoding or '?'} is not supported natively",
                source=self.source,
            )
        if video.protocol.upper() not in _MEDIA_PROTOCOLS:
            raise NativeUnsupported(
                f"media profile {video.protocol or '?'} is not supported natively",
                source=self.source,
            )
        chosen = [video]
        if self.want_audio:
            audio = next(
                (m for m in sdp.media if m.kind == "audio" and codec_name(m) is not None), None
            )
            if audio is not None and audio.protocol.upper() in _MEDIA_PROTOCOLS:
                chosen.append(audio)
        return chosen

    def _setup_track(self, media: MediaDescription, deadline: float) -> None:
        """SETUP one medium and add its track. An audio medium that fails (bad fmtp, a
        refused SETUP) is left out with a warning: the video is still worth recording."""
        is_video = not self.tracks
        try:
            dep = for_media(media, self.stats)
        except ValueError as exc:
            if is_video:
                raise NativeUnsupported(str(exc), source=self.source) from None
            log.warning("%s: audio not read: %s", self.source, exc)
            return
        try:
            channel = self._setup(media, 2 * len(self.tracks), deadline)
        except IngestError as exc:
            if is_video or exc.kind not in _AUDIO_SKIPPABLE:
                raise
            log.warning("%s: audio not read: SETUP failed: %s", self.source, exc.message)
            return
        if any(t.channel == channel for t in self.tracks):
            # a server giving two tracks one channel would mix their packets
            log.warning("%s: audio not read: the server reused channel %d", self.source, channel)
            return
        self.tracks.append(Track(len(self.tracks), media, dep.codec, channel, dep))

    def units(
        self, tracks: Sequence[int] | None = None, *, cooperative: bool = False
    ) -> Iterator[tuple[int, AccessUnit]]:
        """Read until an error: yields ``(track index, access unit)``. Only ``tracks``
        (indices) are depacketized when given. Raises :class:`IngestError` with kind
        ``stalled``, ``eof``, ``stopped``, ``invalid_data`` or ``error``.

        ``cooperative``: the socket is made non-blocking and, instead of blocking for more
        bytes, the generator yields ``(WAIT, NO_UNIT)`` after setting :attr:`wake_at` (the
        monotonic time by which it must be resumed, for the stall check and keep-alives,
        even if the socket stays silent). One thread can then read many cameras: it
        resumes each when its socket is readable or its ``wake_at`` has passed (see
        :mod:`vigil.ingest.loop`). It also yields, with ``wake_at`` 0, after
        ``_MAX_READS_PER_TURN`` full buffers in a row, so that a flooding camera cannot
        starve the others."""
        if not self._playing:
            raise RuntimeError("units() before a successful open()")
        deps: list[Depacketizer | None] = [None] * 256
        index = [0] * 256
        for t in self.tracks:
            if tracks is None or t.index in tracks:
                deps[t.channel] = t.depacketizer
                index[t.channel] = t.index
        sock = self._sock
        if sock is None or self._interrupted:
            raise self._stopped()
        stall = self.stall_timeout
        interval = max(MIN_KEEPALIVE_INTERVAL, self.session_timeout / 2)
        base_timeout = min(stall, interval)
        if cooperative:
            sock.setblocking(False)
            kernel_timeout = False
        else:
            kernel_timeout = netio.use_kernel_timeouts(sock, base_timeout)
        timeout_now = base_timeout
        drained = False  # cooperative: the kernel had no more bytes at the last read
        turn_reads = 0  # cooperative: reads since the last yield
        buf, mv, size, stats = self._buf, self._mv, BUFFER_SIZE, self.stats
        recv_into = sock.recv_into
        start, end = self._start, self._end
        # a stall is no media for stall_timeout: keep-alive answers and RTCP do not count
        last_rx = last_media = time.monotonic()
        keepalive_due = last_rx + interval
        packets = 0  # RTP packets of the current batch, added to the stats after it
        try:
            while True:
                while end - start >= 4:
                    if buf[start] == 0x24:  # '$' channel length(16) payload
                        e = start + 4 + ((buf[start + 2] << 8) | buf[start + 3])
                        if e > end:
                            break
                        ch = buf[start + 1]
                        dep = deps[ch]
                        p = start + 4
                        start = e
                        if dep is None:
                            stats.skipped_packets += 1
                            continue
                        packets += 1
                        dep.push(mv, p, e)
                        if dep.units:
                            ready = dep.units
                            dep.units = []
                            i = index[ch]
                            for unit in ready:
                                yield i, unit
                    else:
                        nxt = self._skip_message(start, end)
                        if nxt < 0:
                            break
                        start = nxt
                media = packets > 0
                if media:
                    stats.rtp_packets += packets
                    packets = 0
                    last_media = last_rx
                    want = base_timeout
                else:  # woken by a timeout, RTCP or an RTSP answer: no media
                    left = last_media + stall - last_rx
                    if left <= 0.002:
                        raise IngestError(
                            "stalled",
                            MESSAGES["stalled"].format(timeout=stall),
                            source=self.source,
                        )
                    want = left
                if last_rx >= keepalive_due:
                    self._keepalive(sock)
                    keepalive_due = last_rx + interval
                if not media:
                    want = max(0.001, min(base_timeout, want, keepalive_due - last_rx))
                if cooperative:
                    if drained or turn_reads >= _MAX_READS_PER_TURN:
                        # no more bytes for now: resume at the stall/keep-alive deadline,
                        # or at once (0) when taking a turn after many full buffers
                        self.wake_at = min(last_media + stall, keepalive_due) if drained else 0.0
                        yield WAIT, NO_UNIT
                        drained = False
                        turn_reads = 0
                elif want != timeout_now:  # only while media is not flowing
                    timeout_now = want
                    netio.set_recv_timeout(sock, want, kernel_timeout)
                if start == end:
                    start = end = 0
                elif size - end < _MIN_FREE:
                    mv[: end - start] = mv[start:end]
                    end -= start
                    start = 0
                if self._interrupted:
                    raise self._stopped()
                try:
                    n = recv_into(mv[end:], size - end)
                except (BlockingIOError, TimeoutError):
                    if self._interrupted:
                        raise self._stopped() from None
                    last_rx = time.monotonic()
                    drained = cooperative
                    continue
                except OSError as exc:
                    raise self._lost(exc) from None
                if n == 0:
                    if self._interrupted:
                        raise self._stopped()
                    raise IngestError("eof", MESSAGES["eof"], source=self.source)
                if cooperative:
                    # a short read emptied the kernel's queue: yield after parsing it
                    # rather than pay a read that can only say EAGAIN
                    drained = n < size - end
                    turn_reads += 1
                end += n
                stats.recv_calls += 1
                stats.bytes_received += n
                last_rx = time.monotonic()
        finally:
            stats.rtp_packets += packets
            self._start, self._end = start, end

    # -- errors ---------------------------------------------------------------------------

    def _stopped(self) -> IngestError:
        return IngestError("stopped", MESSAGES["stopped"], source=self.source)

    def _lost(self, exc: OSError) -> IngestError:
        if self._interrupted:
            return self._stopped()
        name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        return IngestError("error", f"connection lost: {name}", source=self.source)

    def _timeout(self) -> IngestError:
        return IngestError(
            "timeout", MESSAGES["timeout"].format(timeout=self.open_timeout), source=self.source
        )

    # -- connection -----------------------------------------------------------------------

    def _connect(self, deadline: float) -> None:
        if self._interrupted:
            raise self._stopped()
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except OSError as exc:  # gaierror: the name does not resolve
            raise connect_error(exc, source=self.source, timeout=self.open_timeout) from None
        last: OSError = TimeoutError()
        for family, kind, proto, _, addr in infos:
            sock = socket.socket(family, kind, proto)
            with self._lock:
                if self._interrupted:
                    sock.close()
                    raise self._stopped()
                self._sock = sock
            try:
                netio.connect(sock, addr, deadline, lambda: self._interrupted)
            except OSError as exc:
                last = exc
                with self._lock:
                    self._sock = None
                sock.close()
                if self._interrupted:
                    raise self._stopped() from None
                if isinstance(exc, TimeoutError):
                    break
                continue
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return
        raise connect_error(last, source=self.source, timeout=self.open_timeout)

    # -- requests -------------------------------------------------------------------------

    def _headers(
        self, method: str, url: str, extra: Sequence[tuple[str, str]] = ()
    ) -> list[tuple[str, str]]:
        headers = [*extra, ("User-Agent", self.user_agent)]
        if self._session is not None:
            headers.append(("Session", self._session))
        if self._auth is not None:
            headers.append(("Authorization", self._auth.header(method, url)))
        return headers

    def _exchange(
        self, method: str, url: str, deadline: float, extra: Sequence[tuple[str, str]]
    ) -> Message:
        self._cseq += 1
        cseq = self._cseq
        try:
            request = build_request(method, url, cseq, self._headers(method, url, extra))
        except ValueError:
            raise IngestError(
                "protocol", f"refusing to send {method}: line break in a field", source=self.source
            ) from None
        sock = self._sock
        if sock is None or self._interrupted:
            raise self._stopped()
        try:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            sock.sendall(request)
        except TimeoutError:
            err = self._stopped() if self._interrupted else self._timeout()
            raise err from None
        except OSError as exc:
            raise self._lost(exc) from None
        while True:
            msg = self._read_message(deadline)
            if msg.is_response and (msg.cseq is None or msg.cseq == cseq):
                return msg
            self.stats.control_messages += 1  # a stale answer or a server request: skip

    def _authorized(
        self, method: str, url: str, deadline: float, extra: Sequence[tuple[str, str]] = ()
    ) -> Message:
        """Send ``method`` and return the answer, after answering an authentication
        challenge (once, plus once more when the server says the nonce was ``stale``).
        A 401 after that is ``unauthorized``."""
        answered = stale_retry = False
        while True:
            resp = self._exchange(method, url, deadline, extra)
            if resp.status != 401:
                break
            challenges = _parse_challenges(resp.get_all("www-authenticate"))
            if self._user is None or not challenges:
                raise status_error(401, "", method, source=self.source)
            if self._auth is not None and is_stale(challenges) and not stale_retry:
                stale_retry = True
            elif answered:
                raise status_error(401, "", method, source=self.source)
            answered = True
            try:
                self._auth = choose(challenges, self._user, self._password)
            except UnsupportedChallenge as exc:
                raise NativeUnsupported(f"{method}: {exc}", source=self.source) from None
        return resp

    def _request(
        self, method: str, url: str, deadline: float, extra: Sequence[tuple[str, str]] = ()
    ) -> Message:
        """Like :meth:`_authorized`, and any answer but 2xx is an :class:`IngestError`."""
        resp = self._authorized(method, url, deadline, extra)
        if 200 <= resp.status < 300:
            return resp
        reason = sanitize_reason(resp.reason)
        if 300 <= resp.status < 400:
            raise NativeUnsupported(
                f"{method} answered {resp.status} {reason} (redirects are not followed)",
                source=self.source,
            )
        if resp.status == 461 and method == "SETUP":
            raise NativeUnsupported(
                "the camera refuses RTP over TCP (461 Unsupported Transport)",
                source=self.source,
            )
        raise status_error(resp.status, reason, method, source=self.source)

    def _setup(self, media: MediaDescription, channel: int, deadline: float) -> int:
        """SETUP one medium on interleaved channels ``channel``/``channel+1``; returns the
        RTP channel the server chose."""
        transport = f"RTP/AVP/TCP;unicast;interleaved={channel}-{channel + 1}"
        resp = self._request("SETUP", media.control, deadline, [("Transport", transport)])
        session = resp.get("session")
        if session and self._session is None:
            ident, timeout = parse_session(session)
            if ident:
                self._session = ident
            if timeout is not None:
                self.session_timeout = timeout
        answer = resp.get("transport")
        if answer is None:
            return channel
        proto, params = parse_transport(answer)
        if not proto.endswith("/TCP"):
            raise NativeUnsupported(
                f"the camera answered SETUP with transport {proto or '?'}, not TCP",
                source=self.source,
            )
        channels = parse_channels(params.get("interleaved", ""))
        return channels[0] if channels is not None else channel

    def _keepalive(self, sock: socket.socket) -> None:
        """GET_PARAMETER if the server said it has it, else OPTIONS; the answer is read
        (and dropped) by the reading loop like any interleaved RTSP message."""
        method = "GET_PARAMETER" if "GET_PARAMETER" in self.public else "OPTIONS"
        url = self._control
        self._cseq += 1
        try:
            sock.sendall(build_request(method, url, self._cseq, self._headers(method, url)))
        except (BlockingIOError, TimeoutError, ValueError):
            return  # the server is not reading: the stall timeout will tell
        except OSError as exc:
            raise self._lost(exc) from None
        self.stats.keepalives_sent += 1

    # -- reading messages -----------------------------------------------------------------

    def _read_message(self, deadline: float) -> Message:
        """The next RTSP message during the handshake; interleaved frames are skipped."""
        buf = self._buf
        while True:
            start, end = self._start, self._end
            while end - start >= 1:
                if buf[start] in (0x0D, 0x0A):  # stray line ends after a body
                    self._start = start = start + 1
                    continue
                if buf[start] == 0x24:
                    if end - start < 4:
                        break
                    e = start + 4 + ((buf[start + 2] << 8) | buf[start + 3])
                    if e > end:
                        break
                    self._start = start = e
                    self.stats.skipped_packets += 1
                    continue
                msg, nxt = self._parse_message(start, end)
                if msg is None:
                    break
                self._start = nxt
                return msg
            self._fill(deadline)

    def _parse_message(self, start: int, end: int) -> tuple[Message | None, int]:
        """Parse the message at ``start``: (message, offset after it), or (None, start) when
        more bytes are needed. Raises invalid_data for garbage or oversized messages."""
        buf = self._buf
        if not could_be_message(bytes(buf[start : min(end, start + 40)])):
            raise IngestError("invalid_data", MESSAGES["invalid_data"], source=self.source)
        limit = min(end, start + MAX_HEAD_BYTES + 4)
        stop = head_end(buf, start, limit)
        if stop < 0:
            if limit - start >= MAX_HEAD_BYTES + 4:
                raise IngestError(
                    "invalid_data", "RTSP message head over 64 KiB", source=self.source
                )
            return None, start
        try:
            msg = parse_head(buf[start:stop])
            length = msg.content_length
        except MessageError as exc:
            raise IngestError(
                "invalid_data", f"bad RTSP message: {exc}", source=self.source
            ) from None
        if end - stop < length:
            return None, start
        msg.body = bytes(buf[stop : stop + length])
        return msg, stop + length

    def _skip_message(self, start: int, end: int) -> int:
        """While streaming: drop the RTSP message (keep-alive answer, server request) or
        stray line ends at ``start``; returns where the next frame starts, or -1 if more
        bytes are needed."""
        buf = self._buf
        while start < end and buf[start] in (0x0D, 0x0A):
            start += 1
        if start == end or buf[start] == 0x24:
            return start
        msg, nxt = self._parse_message(start, end)
        if msg is None:
            return -1
        self.stats.control_messages += 1
        if msg.is_response and msg.status >= 400:
            log.debug("%s: keep-alive answered %d", self.source, msg.status)
        return nxt

    def _fill(self, deadline: float) -> None:
        """Read more handshake bytes (Python timeout: the handshake is a few round trips)."""
        sock = self._sock
        if sock is None or self._interrupted:
            raise self._stopped()
        if self._start == self._end:
            self._start = self._end = 0
        elif BUFFER_SIZE - self._end < _MIN_FREE:
            n = self._end - self._start
            self._mv[:n] = self._mv[self._start : self._end]
            self._start, self._end = 0, n
        left = deadline - time.monotonic()
        if left <= 0:
            raise self._timeout()
        try:
            sock.settimeout(left)
            n = sock.recv_into(self._mv[self._end :], BUFFER_SIZE - self._end)
        except TimeoutError:
            err = self._stopped() if self._interrupted else self._timeout()
            raise err from None
        except OSError as exc:
            raise self._lost(exc) from None
        if n == 0:
            if self._interrupted:
                raise self._stopped()
            raise IngestError(
                "protocol",
                "the server closed the connection without answering",
                source=self.source,
            )
        self._end += n
        self.stats.recv_calls += 1
        self.stats.bytes_received += n


__all__ = ["BUFFER_SIZE", "RtspClient", "Track"]
