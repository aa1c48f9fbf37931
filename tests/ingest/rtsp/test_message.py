"""RTSP message syntax: bounded parsing, request building, header values."""

from __future__ import annotations

import pytest

from vigil.ingest.rtsp.message import (
    MAX_BODY_BYTES,
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


def test_parse_response_with_repeated_headers() -> None:
    head = (
        b"RTSP/1.0 401 Unauthorized\r\nCSeq: 3\r\n"
        b'WWW-Authenticate: Digest realm="r", nonce="n"\r\n'
        b'WWW-Authenticate: Basic realm="r"\r\nX-Long: a\r\n b\r\n\r\n'
    )
    msg = parse_head(head)
    assert msg.is_response and msg.status == 401 and msg.reason == "Unauthorized"
    assert msg.cseq == 3
    assert msg.get_all("www-authenticate") == ['Digest realm="r", nonce="n"', 'Basic realm="r"']
    assert msg.get("x-long") == "a b"
    assert msg.content_length == 0


def test_server_request_and_garbage() -> None:
    msg = parse_head(b"ANNOUNCE rtsp://cam/ RTSP/1.0\r\nCSeq: 1\r\n\r\n")
    assert not msg.is_response and msg.start_line.startswith("ANNOUNCE")
    msg = parse_head(b"SET_PARAMETER rtsp://cam/ RTSP/1.0\r\nCSeq: 2\r\n\r\n")
    assert not msg.is_response and msg.cseq == 2
    for bad in (b"HTTP/1.1 200 OK\r\n\r\n", b"\x00\x01garbage\r\n\r\n", b"RTSP/1.0 abc\r\n\r\n"):
        with pytest.raises(MessageError):
            parse_head(bad)
    with pytest.raises(MessageError):
        parse_head(b"RTSP/1.0 200 OK\r\n" + b"X: y\r\n" * 20000)
    msg = parse_head(f"RTSP/1.0 200 OK\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode())
    with pytest.raises(MessageError):
        _ = msg.content_length


def test_could_be_message_decides_early() -> None:
    assert could_be_message(b"RTS")
    assert could_be_message(b"RTSP/1.0 200")
    assert could_be_message(b"GET_PARAMETER rtsp://x RTSP/1.0")
    assert could_be_message(b"ANNOUNC")
    assert not could_be_message(b"HTTP/1.1 200 OK")
    assert not could_be_message(b"\x17\x03\x03")  # a TLS record
    assert not could_be_message(b"RTSP/2.0")
    assert not could_be_message(b"A" * 40)


def test_head_end_accepts_bare_lf() -> None:
    assert head_end(b"RTSP/1.0 200 OK\r\n\r\nbody", 0, 23) == 19
    assert head_end(b"RTSP/1.0 200 OK\n\nbody", 0, 21) == 17
    assert head_end(b"RTSP/1.0 200 OK\r\n", 0, 17) == -1


def test_build_request_refuses_line_breaks() -> None:
    data = build_request("OPTIONS", "rtsp://cam/", 7, [("User-Agent", "vigil")])
    assert data == b"OPTIONS rtsp://cam/ RTSP/1.0\r\nCSeq: 7\r\nUser-Agent: vigil\r\n\r\n"
    with pytest.raises(ValueError):
        build_request("SETUP", "rtsp://cam/x\r\nEvil: 1", 1)
    with pytest.raises(ValueError):
        build_request("PLAY", "rtsp://cam/", 1, [("Session", "1\r\nX: y")])


def test_header_values() -> None:
    assert parse_session("12345678;timeout=30") == ("12345678", 30.0)
    assert parse_session("abc; Timeout = 65") == ("abc", 65.0)
    assert parse_session("abc;timeout=bad") == ("abc", None)
    assert parse_session("abc") == ("abc", None)
    proto, params = parse_transport("RTP/AVP/TCP;unicast;interleaved=2-3;ssrc=1234ABCD;mode=play")
    assert proto == "RTP/AVP/TCP" and params["interleaved"] == "2-3" and params["unicast"] == ""
    assert parse_transport("RTP/AVP;unicast;client_port=5000-5001")[0] == "RTP/AVP"
    assert parse_channels("2-3") == (2, 3)
    assert parse_channels("4") == (4, 5)
    assert parse_channels("x") is None
    assert parse_channels("300-301") is None
    assert parse_public("OPTIONS, DESCRIBE,get_parameter") == {
        "OPTIONS", "DESCRIBE", "GET_PARAMETER",
    }  # fmt: skip
    assert parse_public(None) == frozenset()
