"""The RTSP session against scripted fake cameras: handshake, failure classification,
authentication, reading, keep-alive, stalls, interrupts. Every test runs well under 2 s."""

from __future__ import annotations

import hashlib
import random
import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.ingest.ingest_helpers import free_port, wait_until
from tests.ingest.rtsp.fake_camera import (
    H264_SDP,
    FakeCamera,
    Request,
    ServerConn,
    h264_frame,
    send_frames,
)
from tests.ingest.rtsp.rtp import interleaved, rtp
from vigil.ingest.errors import IngestError
from vigil.ingest.rtsp import NativeUnsupported
from vigil.ingest.rtsp import client as client_module
from vigil.ingest.rtsp.auth import parse_challenges
from vigil.ingest.rtsp.client import WAIT, RtspClient
from vigil.ingest.rtsp.depacketize import AccessUnit

PASSWORD = "s3cr3t-Pw"
OPEN = 2.0


def client(url: str, *, open_timeout: float = OPEN, stall: float = 5.0) -> RtspClient:
    return RtspClient(url, display="", open_timeout=open_timeout, stall_timeout=stall)


class Turns:
    """What a cooperative reader yielded besides units."""

    def __init__(self) -> None:
        self.waits = 0  # "no bytes now" yields
        self.turns = 0  # "others' turn" yields (wake_at 0) after many full buffers


def iter_units(
    c: RtspClient, cooperative: bool = False, turns: Turns | None = None
) -> Iterator[tuple[int, AccessUnit]]:
    """``c.units()``; cooperative: driven like the ingest loop does, waiting with select
    on the socket until it is readable or ``wake_at`` has come."""
    if not cooperative:
        yield from c.units()
        return
    for index, unit in c.units(cooperative=True):
        if index != WAIT:
            yield index, unit
            continue
        if c.wake_at == 0.0:
            if turns is not None:
                turns.turns += 1
            continue
        if turns is not None:
            turns.waits += 1
        fd = c.fileno()
        left = c.wake_at - time.monotonic()
        if fd >= 0 and left > 0:
            select.select([fd], [], [], left)


@pytest.fixture(params=[False, True], ids=["blocking", "cooperative"])
def cooperative(request: pytest.FixtureRequest) -> bool:
    """Reading tests run both ways: on the reader's own blocking thread and the way the
    shared ingest loop reads (non-blocking, resumed by readiness or deadline)."""
    return bool(request.param)


def read_all(
    c: RtspClient, limit: int = 10_000, cooperative: bool = False, turns: Turns | None = None
) -> tuple[list[AccessUnit], IngestError]:
    """Read units until the client raises; returns both."""
    units: list[AccessUnit] = []
    with pytest.raises(IngestError) as info:
        for _, unit in iter_units(c, cooperative, turns):
            units.append(unit)
            if len(units) >= limit:
                break
        raise AssertionError("units() ended without an error")
    return units, info.value


@pytest.fixture
def cams() -> Iterator[list[FakeCamera]]:
    """Fake cameras created by a test, always closed."""
    made: list[FakeCamera] = []
    yield made
    for cam in made:
        cam.close()


def camera(cams: list[FakeCamera], **kw: object) -> FakeCamera:
    cam = FakeCamera(**kw)  # type: ignore[arg-type]
    cams.append(cam)
    return cam


def wait_for_request(cam: FakeCamera, method: str, timeout: float = 2.0) -> None:
    """The server thread records requests asynchronously: wait for ``method``."""
    deadline = time.monotonic() + timeout
    while method not in cam.methods() and time.monotonic() < deadline:
        time.sleep(0.01)


def assert_no_secret(cam: FakeCamera, *texts: str) -> None:
    for req in cam.requests:
        first_line = req.raw.split("\r\n", 1)[0]
        assert PASSWORD not in first_line and "@" not in first_line, first_line
        assert "@" not in req.url
    for text in texts:
        assert PASSWORD not in text


# --------------------------------------------------------------------------- handshake


def test_handshake_streams_and_tears_down(cams: list[FakeCamera]) -> None:
    def stream(conn: ServerConn, cam: FakeCamera) -> None:
        send_frames(conn, 30)
        conn.stop.wait(0.5)  # stay connected: the client closes
        while (req := conn.read_request(0.5)) is not None:
            cam.requests.append(req)

    cam = camera(cams, stream=stream)
    c = client(cam.url())
    c.open()
    assert [t.codec for t in c.tracks] == ["h264"]
    units = []
    for _, unit in c.units():
        units.append(unit)
        if len(units) == 30:
            break
    c.close()
    c.close()  # idempotent
    assert [u.ts for u in units] == [i * 6000 for i in range(30)]
    assert [u.keyframe for u in units[:16]] == [True] + [False] * 14 + [True]
    assert units[3].data[4] == 0x61  # a length-prefixed slice
    assert int.from_bytes(units[3].data[:4], "big") == len(units[3].data) - 4
    wait_for_request(cam, "TEARDOWN")
    assert cam.methods() == ["OPTIONS", "DESCRIBE", "SETUP", "PLAY", "TEARDOWN"]
    describe, setup, play, teardown = cam.requests[1:]
    assert describe.headers["accept"] == "application/sdp"
    assert setup.url == cam.url() + "/trackID=1"  # relative control, Content-Base
    assert setup.headers["transport"] == "RTP/AVP/TCP;unicast;interleaved=0-1"
    assert play.headers["session"] == "12345678" and play.headers["range"] == "npt=0.000-"
    assert play.url == cam.url() + "/"  # aggregate control "*": the base
    assert teardown.headers["session"] == "12345678"
    assert c.stats.units == 30 and c.stats.rtp_packets == 30 and c.stats.recv_calls >= 1


@pytest.mark.parametrize(
    "answer",
    [
        random.Random(3).randbytes(20_000),
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01",  # a TLS handshake: rtsps on an rtsp URL
    ],
    ids=["random", "http", "tls"],
)
def test_garbage_answer_is_invalid_data(cams: list[FakeCamera], answer: bytes) -> None:
    cam = camera(cams, garbage=answer)
    t = time.monotonic()
    with pytest.raises(IngestError) as info:
        client(cam.url()).open()
    assert info.value.kind == "invalid_data"
    assert time.monotonic() - t < 1.0  # recognised from the first bytes, not by timeout


def test_silent_server_times_out(cams: list[FakeCamera]) -> None:
    cam = camera(cams, silent=True)
    t = time.monotonic()
    with pytest.raises(IngestError) as info:
        client(cam.url(), open_timeout=0.5).open()
    elapsed = time.monotonic() - t
    assert info.value.kind == "timeout" and "0.5 s" in str(info.value)
    assert 0.45 <= elapsed < 1.2


def test_refused_and_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(IngestError) as info:
        client(f"rtsp://127.0.0.1:{free_port()}/x").open()
    assert info.value.kind == "refused"

    def no_dns(*args: object, **kw: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(IngestError) as info:
        client("rtsp://camera.invalid/x").open()
    assert info.value.kind == "unreachable"


@pytest.mark.parametrize(
    ("status", "kind"),
    [(403, "forbidden"), (404, "not_found"), (500, "protocol"), (454, "protocol")],
)
def test_describe_status_mapping(cams: list[FakeCamera], status: int, kind: str) -> None:
    cam = camera(cams, statuses={"DESCRIBE": status})
    with pytest.raises(IngestError) as info:
        client(cam.url()).open()
    assert info.value.kind == kind and not isinstance(info.value, NativeUnsupported)
    if kind == "protocol":
        assert f"RTSP {status}" in str(info.value)


def test_options_failure_is_tolerated(cams: list[FakeCamera]) -> None:
    cam = camera(cams, statuses={"OPTIONS": 501})
    c = client(cam.url())
    c.open()  # only the Public list is lost: keep-alives fall back to OPTIONS
    c.close()
    assert c.public == frozenset() and cam.methods()[:4] == ["OPTIONS", "DESCRIBE", "SETUP", "PLAY"]


def test_unsupported_cases_raise_native_unsupported(cams: list[FakeCamera]) -> None:
    cam = camera(cams, statuses={"SETUP": 461})
    with pytest.raises(NativeUnsupported, match="461") as info:
        client(cam.url()).open()
    assert info.value.kind == "protocol"
    mjpeg = H264_SDP.replace("H264/90000", "JPEG/90000")
    cam = camera(cams, sdp=mjpeg)
    with pytest.raises(NativeUnsupported, match="JPEG"):
        client(cam.url()).open()
    cam = camera(cams, statuses={"DESCRIBE": 302})
    with pytest.raises(NativeUnsupported, match="302"):
        client(cam.url()).open()
    with pytest.raises(NativeUnsupported):
        client("rtsps://127.0.0.1/x")


def test_no_video_medium(cams: list[FakeCamera]) -> None:
    sdp = "v=0\r\nm=audio 0 RTP/AVP 0\r\na=control:trackID=2\r\n"
    cam = camera(cams, sdp=sdp)
    with pytest.raises(IngestError) as info:
        client(cam.url()).open()
    assert info.value.kind == "not_video"


def test_audio_setup_uses_next_channels(cams: list[FakeCamera]) -> None:
    sdp = H264_SDP + (
        "m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MP4A-LATM/16000\r\na=control:trackID=2\r\n"
        "m=audio 0 RTP/AVP 0\r\na=control:trackID=3\r\n"
    )
    cam = camera(cams, sdp=sdp)
    c = client(cam.url())
    c.open()
    c.close()
    assert [(t.codec, t.channel) for t in c.tracks] == [("h264", 0), ("pcm_mulaw", 2)]
    setups = [r for r in cam.requests if r.method == "SETUP"]
    assert setups[1].url.endswith("/trackID=3")  # LATM is skipped: first supported audio
    assert setups[1].headers["transport"].endswith("interleaved=2-3")
    assert setups[1].headers["session"] == "12345678"
    c = RtspClient(cam.url(), open_timeout=OPEN, stall_timeout=5, audio=False)
    c.open()
    c.close()
    assert [t.codec for t in c.tracks] == ["h264"]


def test_audio_on_the_video_channel_is_dropped(cams: list[FakeCamera]) -> None:
    sdp = H264_SDP + "m=audio 0 RTP/AVP 0\r\na=control:trackID=2\r\n"
    cam = camera(cams, sdp=sdp)
    real = cam._answer

    def answer(conn: ServerConn, req: Request) -> bool:
        if req.method == "SETUP":  # a buggy server: every track on channels 0-1
            conn.reply(
                req,
                200,
                [("Session", "12345678"), ("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")],
            )
            return False
        return real(conn, req)

    cam._answer = answer  # type: ignore[method-assign]
    c = client(cam.url())
    c.open()
    c.close()
    assert [(t.codec, t.channel) for t in c.tracks] == [("h264", 0)]


# --------------------------------------------------------------------------- auth


def basic_always_401(req: Request) -> list[str]:
    return ['Basic realm="cam"']


def test_401_twice_is_unauthorized(cams: list[FakeCamera]) -> None:
    cam = camera(cams, auth=basic_always_401)
    with pytest.raises(IngestError) as info:
        client(cam.url(f"admin:{PASSWORD}")).open()
    assert info.value.kind == "unauthorized"
    describes = [r for r in cam.requests if r.method == "DESCRIBE"]
    assert len(describes) == 2  # the challenge is answered once, not in a loop
    assert "authorization" not in describes[0].headers
    assert describes[1].headers["authorization"].startswith("Basic ")
    assert_no_secret(cam, str(info.value), repr(info.value))


def test_401_without_credentials(cams: list[FakeCamera]) -> None:
    cam = camera(cams, auth=basic_always_401)
    with pytest.raises(IngestError) as info:
        client(cam.url()).open()
    assert info.value.kind == "unauthorized"
    assert cam.methods().count("DESCRIBE") == 1


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class DigestServer:
    """Verifies Digest answers with its own hashlib computation. The first nonce becomes
    stale after DESCRIBE, as a camera rotating nonces does."""

    def __init__(self) -> None:
        self.nonce = "nonce-1"
        self.rotated = False
        self.seen: list[dict[str, str]] = []

    def challenges(self, stale: bool = False) -> list[str]:
        extra = ", stale=true" if stale else ""
        # Basic is offered too: the client must still pick Digest
        return [
            'Basic realm="cam"',
            f'Digest realm="cam", nonce="{self.nonce}", qop="auth", opaque="op"{extra}',
        ]

    def __call__(self, req: Request) -> list[str] | None:
        header = req.headers.get("authorization")
        if header is None or not header.startswith("Digest "):
            return self.challenges()
        (c,) = parse_challenges([header])
        p = c.params
        self.seen.append(p)
        ha1 = md5(f"admin:cam:{PASSWORD}")
        ha2 = md5(f"{req.method}:{req.url}")
        expected = md5(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:auth:{ha2}")
        if p["response"] != expected or p["uri"] != req.url or p.get("opaque") != "op":
            return self.challenges()
        if p["nonce"] != self.nonce:
            return self.challenges(stale=True)
        if req.method == "SETUP" and not self.rotated:
            self.rotated = True
            self.nonce = "nonce-2"
            return self.challenges(stale=True)
        return None


def test_digest_and_stale_nonce(cams: list[FakeCamera]) -> None:
    digest = DigestServer()
    cam = camera(cams, auth=digest)
    c = client(cam.url(f"admin:{PASSWORD}"))
    c.open()
    c.close()
    wait_for_request(cam, "TEARDOWN")
    methods = cam.methods()
    assert methods[:7] == ["OPTIONS", "DESCRIBE", "DESCRIBE", "SETUP", "SETUP", "PLAY", "TEARDOWN"]
    assert [(p["nonce"], p["nc"]) for p in digest.seen] == [
        ("nonce-1", "00000001"), ("nonce-1", "00000002"), ("nonce-2", "00000001"),
        ("nonce-2", "00000002"), ("nonce-2", "00000003"),
    ]  # fmt: skip
    assert all(not r.headers.get("authorization", "").startswith("Basic") for r in cam.requests)
    assert_no_secret(cam)


def test_wrong_digest_password(cams: list[FakeCamera]) -> None:
    cam = camera(cams, auth=DigestServer())
    with pytest.raises(IngestError) as info:
        client(cam.url("admin:wrong")).open()
    assert info.value.kind == "unauthorized"
    assert cam.methods().count("DESCRIBE") == 2


# --------------------------------------------------------------------------- reading


def test_server_closing_mid_stream_is_eof(cams: list[FakeCamera], cooperative: bool) -> None:
    cam = camera(cams, stream=lambda conn, cam: send_frames(conn, 10))
    c = client(cam.url())
    c.open()
    units, err = read_all(c, cooperative=cooperative)
    c.close()
    assert len(units) == 10
    assert err.kind == "eof" and "the server ended the stream" in str(err)


def test_stall_after_play(cams: list[FakeCamera], cooperative: bool) -> None:
    sent = threading.Event()

    def stream(conn: ServerConn, cam: FakeCamera) -> None:
        send_frames(conn, 5)
        sent.set()
        conn.stop.wait(10)

    cam = camera(cams, stream=stream)
    c = client(cam.url(), stall=0.6)
    c.open()
    units: list[AccessUnit] = []
    t_last = time.monotonic()
    with pytest.raises(IngestError) as info:
        for _, unit in iter_units(c, cooperative):
            units.append(unit)
            t_last = time.monotonic()
    elapsed = time.monotonic() - t_last
    c.close()
    assert len(units) == 5
    assert info.value.kind == "stalled" and "0.6 s" in str(info.value)
    assert 0.5 <= elapsed < 1.5


def test_stall_is_detected_while_keepalive_answers_and_rtcp_flow(
    cams: list[FakeCamera], cooperative: bool
) -> None:
    """A camera whose media stopped but which still answers keep-alives and sends RTCP
    is stalled: only media resets the stall timer."""

    def stream(conn: ServerConn, cam: FakeCamera) -> None:
        send_frames(conn, 3)
        end = time.monotonic() + 5
        while time.monotonic() < end and not conn.stop.is_set():
            conn.send(interleaved(1, b"\x80\xc8\x00\x06" + b"\x00" * 24))  # RTCP SR
            req = conn.read_request(0.1)
            if req is not None:
                cam.requests.append(req)
                conn.reply(req, 200, [("Session", "12345678")])

    cam = camera(cams, stream=stream, session_timeout=1)
    c = client(cam.url(), stall=1.2)
    c.open()
    t = time.monotonic()
    units, err = read_all(c, cooperative=cooperative)
    elapsed = time.monotonic() - t
    c.close()
    assert len(units) == 3 and err.kind == "stalled"
    assert 1.1 <= elapsed < 2.2
    # every 0.5 s while waiting (the server thread records them asynchronously)
    assert wait_until(lambda: cam.methods().count("GET_PARAMETER") >= 2, 2)
    assert c.stats.skipped_packets > 5 and c.stats.control_messages >= 1


def test_keepalive_answers_interleaved_between_frames(
    cams: list[FakeCamera], cooperative: bool
) -> None:
    sent = [0]

    def stream(conn: ServerConn, cam: FakeCamera) -> None:
        end = time.monotonic() + 1.4
        i = 0
        while time.monotonic() < end:
            conn.send(h264_frame(i, i))
            i += 1
            req = conn.read_request(0.02)
            if req is not None:
                cam.requests.append(req)
                body = b"param: value\r\n"
                head = (
                    f"RTSP/1.0 200 OK\r\nCSeq: {req.headers['cseq']}\r\nSession: 12345678\r\n"
                    f"Content-Type: text/parameters\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                answer = head + body
                conn.send(answer[:10])  # split across TCP segments...
                time.sleep(0.01)
                conn.send(answer[10:] + b"\r\n")  # ...plus a stray line end
        sent[0] = i

    cam = camera(cams, stream=stream, session_timeout=1)
    c = client(cam.url(), stall=2)
    c.open()
    units, err = read_all(c, cooperative=cooperative)
    c.close()
    assert err.kind == "eof"
    assert len(units) == sent[0] > 30
    assert [u.ts for u in units] == [i * 6000 for i in range(sent[0])]
    keepalives = [r for r in cam.requests if r.method == "GET_PARAMETER"]
    assert len(keepalives) >= 2 and c.stats.keepalives_sent == len(keepalives)
    assert c.stats.control_messages == len(keepalives)
    assert all(r.headers["session"] == "12345678" for r in keepalives)
    assert keepalives[0].url == cam.url() + "/"


def test_keepalive_falls_back_to_options(cams: list[FakeCamera], cooperative: bool) -> None:
    def stream(conn: ServerConn, cam: FakeCamera) -> None:
        end = time.monotonic() + 0.8
        i = 0
        while time.monotonic() < end:
            conn.send(h264_frame(i, i))
            i += 1
            req = conn.read_request(0.03)
            if req is not None:
                cam.requests.append(req)
                conn.reply(req, 200, [("Session", "12345678")])

    cam = camera(cams, stream=stream, session_timeout=1, public="OPTIONS, DESCRIBE, SETUP, PLAY")
    c = client(cam.url(), stall=2)
    c.open()
    read_all(c, cooperative=cooperative)
    c.close()
    assert cam.methods()[:4] == ["OPTIONS", "DESCRIBE", "SETUP", "PLAY"]
    assert wait_until(lambda: "OPTIONS" in cam.methods()[4:], 2)
    assert "GET_PARAMETER" not in cam.methods()


def test_server_request_between_frames_is_skipped(
    cams: list[FakeCamera], cooperative: bool
) -> None:
    def stream(conn: ServerConn, cam: FakeCamera) -> None:
        send_frames(conn, 2)
        body = b"x-event: motion\r\n"
        conn.send(
            b"SET_PARAMETER rtsp://127.0.0.1/cam RTSP/1.0\r\nCSeq: 1\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        send_frames(conn, 2, first=2)

    cam = camera(cams, stream=stream)
    c = client(cam.url())
    c.open()
    units, err = read_all(c, cooperative=cooperative)
    c.close()
    assert err.kind == "eof" and len(units) == 4 and c.stats.control_messages == 1


def test_garbage_after_play_is_invalid_data(cams: list[FakeCamera], cooperative: bool) -> None:
    def stream(conn: ServerConn, cam: FakeCamera) -> None:
        send_frames(conn, 3)
        conn.send(b"\x00\xffjunk" * 100)
        conn.stop.wait(5)

    cam = camera(cams, stream=stream)
    c = client(cam.url())
    c.open()
    units, err = read_all(c, cooperative=cooperative)
    c.close()
    assert len(units) == 3 and err.kind == "invalid_data"


def test_rtcp_and_unknown_channels_are_skipped_and_big_frames_cross_buffer(
    cams: list[FakeCamera], cooperative: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames up to 64 KiB and 40 MB in total: the 256 KiB buffer wraps many times.
    Cooperative: the reader gives the others a turn after every read that did not empty
    the socket (how often that happens depends on timing, so it is forced here), and
    picks up where it stopped."""
    big = 60_000
    monkeypatch.setattr(client_module, "_MAX_READS_PER_TURN", 0)

    def stream(conn: ServerConn, cam: FakeCamera) -> None:
        for i in range(700):
            conn.send(interleaved(1, b"\x80\xc9\x00\x01" + b"\x00" * 4))  # RTCP RR
            conn.send(interleaved(7, b"\x00" * 10))  # a channel nobody set up
            nal = bytes([0x65 if i == 0 else 0x41, 0x88]) + bytes([i & 0xFF]) * big
            conn.send(interleaved(0, rtp(i, i * 3000, nal, marker=True)))

    cam = camera(cams, stream=stream)
    c = client(cam.url())
    c.open()
    turns = Turns()
    units, err = read_all(c, cooperative=cooperative, turns=turns)
    c.close()
    assert err.kind == "eof" and len(units) == 700
    if cooperative:
        assert turns.turns >= 1
    assert all(len(u.data) == 4 + 2 + big and u.data[6] == i & 0xFF for i, u in enumerate(units))
    assert c.stats.skipped_packets == 1400 and c.stats.rtp_packets == 700
    assert c.stats.bytes_received > 700 * big


def test_cooperative_reading_never_blocks(cams: list[FakeCamera]) -> None:
    """The ingest loop's contract: a cooperative reader returns at once when the socket
    has nothing, with a deadline no later than the stall timeout."""

    def stream(conn: ServerConn, cam: FakeCamera) -> None:
        send_frames(conn, 3)
        conn.stop.wait(10)

    cam = camera(cams, stream=stream)
    c = client(cam.url(), stall=5)
    c.open()
    units = c.units(cooperative=True)
    got, waits, slowest = 0, 0, 0.0
    deadline = time.monotonic() + 2
    while got < 3 or waits < 3:
        assert time.monotonic() < deadline
        t = time.monotonic()
        index, _unit = next(units)
        slowest = max(slowest, time.monotonic() - t)
        if index == WAIT:
            waits += 1
            assert t < c.wake_at <= t + 5.1
            time.sleep(0.01)
        else:
            got += 1
    c.close()
    assert slowest < 0.2


# --------------------------------------------------------------------------- interrupt


def test_interrupt_while_blocked_in_recv(cams: list[FakeCamera], cooperative: bool) -> None:
    def stream(conn: ServerConn, cam: FakeCamera) -> None:
        send_frames(conn, 3)
        conn.stop.wait(30)

    cam = camera(cams, stream=stream)
    c = client(cam.url(), stall=30)
    c.open()
    got: list[AccessUnit] = []
    errors: list[IngestError] = []
    three = threading.Event()

    def reader() -> None:
        try:
            for _, unit in iter_units(c, cooperative):
                got.append(unit)
                if len(got) == 3:
                    three.set()
        except IngestError as exc:
            errors.append(exc)

    th = threading.Thread(target=reader)
    th.start()
    assert three.wait(2)
    time.sleep(0.2)  # now blocked in recv
    t = time.monotonic()
    c.interrupt()
    th.join(2)
    elapsed = time.monotonic() - t
    c.close()
    assert not th.is_alive() and elapsed < 1.0
    assert [e.kind for e in errors] == ["stopped"]
    c.interrupt()  # after close: harmless


def test_interrupt_during_open(cams: list[FakeCamera]) -> None:
    cam = camera(cams, silent=True)
    c = client(cam.url(), open_timeout=30)
    errors: list[IngestError] = []

    def opener() -> None:
        try:
            c.open()
        except IngestError as exc:
            errors.append(exc)

    th = threading.Thread(target=opener)
    th.start()
    time.sleep(0.3)
    t = time.monotonic()
    c.interrupt()
    th.join(2)
    assert not th.is_alive() and time.monotonic() - t < 1.0
    assert [e.kind for e in errors] == ["stopped"]
    c.close()


def test_interrupt_before_open(cams: list[FakeCamera]) -> None:
    cam = camera(cams)
    c = client(cam.url())
    c.interrupt()
    with pytest.raises(IngestError) as info:
        c.open()
    assert info.value.kind == "stopped"
    assert cam.connections == 0
    c.close()
    c.interrupt()


def test_close_from_another_thread_wakes_the_reader(cams: list[FakeCamera]) -> None:
    cam = camera(cams, stream=lambda conn, cam: conn.stop.wait(30))
    c = client(cam.url(), stall=30)
    c.open()
    errors: list[IngestError] = []

    def reader() -> None:
        try:
            for _ in c.units():
                pass
        except IngestError as exc:
            errors.append(exc)

    th = threading.Thread(target=reader)
    th.start()
    time.sleep(0.2)
    c.close()
    th.join(2)
    assert not th.is_alive() and [e.kind for e in errors] == ["stopped"]


def test_no_secret_in_errors_logs_or_reprs(
    cams: list[FakeCamera], caplog: pytest.LogCaptureFixture
) -> None:
    cam = camera(cams, statuses={"DESCRIBE": 500})
    url = cam.url(f"admin:{PASSWORD}")
    c = client(url)
    with pytest.raises(IngestError) as info:
        c.open()
    c.close()
    assert str(info.value).startswith(f"rtsp://127.0.0.1:{cam.port}/cam: ")
    assert_no_secret(cam, str(info.value), repr(info.value), repr(c), caplog.text)
