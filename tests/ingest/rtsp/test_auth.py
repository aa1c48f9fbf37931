"""Basic and Digest authentication, checked against the RFCs' worked examples and an
independent hashlib computation."""

from __future__ import annotations

import base64
import hashlib

import pytest

from vigil.ingest.rtsp.auth import (
    BasicAuth,
    Challenge,
    DigestAuth,
    UnsupportedChallenge,
    choose,
    is_stale,
    parse_challenges,
)


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def params(header: str) -> dict[str, str]:
    (c,) = parse_challenges([header])
    return c.params


def test_rfc2617_worked_example() -> None:
    """RFC 2617 section 3.5: Mufasa / "Circle Of Life", qop=auth, nc=1."""
    challenge = parse_challenges(
        [
            'Digest realm="testrealm@host.com", qop="auth,auth-int", '
            'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
            'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
        ]
    )
    auth = choose(challenge, "Mufasa", "Circle Of Life", cnonce=lambda: "0a4f113b")
    assert isinstance(auth, DigestAuth)
    header = auth.header("GET", "/dir/index.html")
    assert header.startswith("Digest ")
    p = params(header)
    assert p["response"] == "6629fae49393a05397450978507c4ef1"
    assert p["username"] == "Mufasa" and p["uri"] == "/dir/index.html"
    assert p["qop"] == "auth" and p["nc"] == "00000001" and p["cnonce"] == "0a4f113b"
    assert p["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"
    assert "algorithm" not in p  # not echoed when the server did not send one
    # the nonce count goes up with every request
    assert params(auth.header("GET", "/dir/index.html"))["nc"] == "00000002"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_examples(algorithm: str, expected: str) -> None:
    """RFC 7616 section 3.9.1: Mufasa / "Circle of Life"."""
    challenge = Challenge(
        "digest",
        {
            "realm": "http-auth@example.org",
            "qop": "auth, auth-int",
            "algorithm": algorithm,
            "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
        },
    )
    auth = DigestAuth(
        "Mufasa",
        "Circle of Life",
        challenge,
        cnonce=lambda: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    p = params(auth.header("GET", "/dir/index.html"))
    assert p["response"] == expected
    assert p["algorithm"] == algorithm


def test_no_qop_and_md5_sess_match_independent_computation() -> None:
    c = Challenge("digest", {"realm": "cam", "nonce": "abc"})
    auth = DigestAuth("admin", "pw", c)
    ha1, ha2 = md5("admin:cam:pw"), md5("DESCRIBE:rtsp://cam/live")
    p = params(auth.header("DESCRIBE", "rtsp://cam/live"))
    assert p["response"] == md5(f"{ha1}:abc:{ha2}")
    assert "qop" not in p and "nc" not in p and "cnonce" not in p

    c = Challenge(
        "digest", {"realm": "cam", "nonce": "abc", "qop": "auth", "algorithm": "MD5-sess"}
    )
    auth = DigestAuth("admin", "pw", c, cnonce=lambda: "c0ffee")
    sess = md5(f"{md5('admin:cam:pw')}:abc:c0ffee")
    p = params(auth.header("SETUP", "rtsp://cam/live/track1"))
    assert p["response"] == md5(
        f"{sess}:abc:00000001:c0ffee:auth:{md5('SETUP:rtsp://cam/live/track1')}"
    )


def test_auth_int_and_userhash() -> None:
    c = Challenge("digest", {"realm": "r", "nonce": "n", "qop": "auth-int", "userhash": "true"})
    auth = DigestAuth("u", "p", c, cnonce=lambda: "cn")
    p = params(auth.header("PLAY", "rtsp://cam/"))
    ha2 = md5(f"PLAY:rtsp://cam/:{md5('')}")
    assert p["qop"] == "auth-int"
    assert p["response"] == md5(f"{md5('u:r:p')}:n:00000001:cn:auth-int:{ha2}")
    assert p["username"] == md5("u:r") and p["userhash"] == "true"


def test_cnonce_is_random() -> None:
    c = Challenge("digest", {"realm": "r", "nonce": "n", "qop": "auth"})
    a, b = DigestAuth("u", "p", c), DigestAuth("u", "p", c)
    assert a.cnonce != b.cnonce and len(a.cnonce) >= 16


def test_parse_several_challenges_in_one_header() -> None:
    cs = parse_challenges(
        [
            'Basic realm="IP Camera", Digest realm="IP Camera", nonce="a,b=c", '
            'qop="auth", stale=FALSE',
            'Digest realm="x\\"y", nonce="n2", algorithm=SHA-256, stale=true',
            "Negotiate abc==, Bearer",
        ]
    )
    assert [c.scheme for c in cs] == ["basic", "digest", "digest", "negotiate", "bearer"]
    assert cs[0].params == {"realm": "IP Camera"}
    assert cs[1].params["nonce"] == "a,b=c" and cs[1].params["stale"] == "FALSE"
    assert cs[2].params["realm"] == 'x"y'
    assert is_stale(cs) and not is_stale(cs[:2])


def test_choose_prefers_digest_and_sha256() -> None:
    basic = Challenge("basic", {"realm": "r"})
    md5c = Challenge("digest", {"realm": "r", "nonce": "n"})
    sha = Challenge("digest", {"realm": "r", "nonce": "n", "algorithm": "SHA-256"})
    assert isinstance(choose([basic, md5c], "u", "p"), DigestAuth)
    chosen = choose([basic, md5c, sha], "u", "p")
    assert isinstance(chosen, DigestAuth) and chosen.algorithm_param == "SHA-256"
    only_basic = choose([basic], "u", "pä")
    assert isinstance(only_basic, BasicAuth)
    value = only_basic.header("DESCRIBE", "rtsp://cam/")
    assert base64.b64decode(value.removeprefix("Basic ")).decode() == "u:pä"


def test_unusable_challenges() -> None:
    basic = Challenge("basic", {"realm": "r"})
    odd = Challenge("digest", {"realm": "r", "nonce": "n", "algorithm": "SHA-512-256"})
    # never downgrade to Basic when the camera can do Digest
    with pytest.raises(UnsupportedChallenge, match="SHA-512-256"):
        choose([odd, basic], "u", "p")
    with pytest.raises(UnsupportedChallenge, match="qop"):
        choose([Challenge("digest", {"nonce": "n", "qop": "auth-conf"})], "u", "p")
    with pytest.raises(UnsupportedChallenge, match="bearer"):
        choose([Challenge("bearer")], "u", "p")


def test_repr_has_no_secret() -> None:
    c = Challenge("digest", {"realm": "r", "nonce": "n"})
    for auth in (DigestAuth("admin", "hunter22", c), BasicAuth("admin", "hunter22")):
        assert "hunter22" not in repr(auth) and "admin" not in repr(auth)
