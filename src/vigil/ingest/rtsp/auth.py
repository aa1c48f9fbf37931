"""HTTP-style authentication for RTSP requests: Basic (RFC 7617) and Digest (RFC 2617,
RFC 7616).

Why Digest wins whenever it is offered: RTSP runs in clear text, and Basic sends the
password base64-encoded in every request, readable by anyone on the camera network. Digest
sends a hash bound to the server's nonce. So Basic is used only when the camera offers no
Digest challenge at all, and a Digest challenge we cannot answer (an algorithm such as
SHA-512-256) is an error, never a reason to fall back to Basic.

Supported: algorithms MD5, MD5-sess, SHA-256, SHA-256-sess (SHA-256 preferred when a camera
offers both); ``qop=auth``, no qop (RFC 2069 style, still common on cameras) and
``qop=auth-int`` (RTSP requests we send have no body, so the entity hash is that of the
empty string); the nonce count, a random ``cnonce`` from :mod:`secrets` per nonce, ``opaque``
echoed back, ``userhash``. ``stale=true`` handling (retry once with the new nonce) is the
caller's decision, see :func:`is_stale`.

Secrets: the password lives only in :class:`Authenticator` instances (excluded from their
``repr``) and in the ``Authorization`` header values they return, which callers must never
log or put in an exception.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

_ALGORITHMS: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda b: hashlib.md5(b, usedforsecurity=False).hexdigest(),
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
}
# preference when a camera offers several Digest challenges: strongest first
_PREFERENCE = ("SHA-256", "SHA-256-SESS", "MD5", "MD5-SESS")


class UnsupportedChallenge(ValueError):
    """The server asks for authentication we cannot provide (message names the scheme)."""


@dataclass(frozen=True, slots=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: the scheme (lowercased) and its
    auth-params (keys lowercased, values unquoted)."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(values: Iterable[str]) -> list[Challenge]:
    """All challenges of one or more ``WWW-Authenticate`` header values. A value may hold
    several challenges (``Basic realm="a", Digest realm="b", nonce="n"``)."""
    out: list[Challenge] = []
    for value in values:
        out.extend(_parse_one_header(value))
    return out


def _parse_one_header(value: str) -> list[Challenge]:
    out: list[Challenge] = []
    current: Challenge | None = None
    pos, n = 0, len(value)
    while pos < n:
        while pos < n and value[pos] in " \t,":
            pos += 1
        start = pos
        while pos < n and value[pos] not in " \t,=":
            pos += 1
        token = value[start:pos]
        if not token:
            pos += 1
            continue
        look = pos
        while look < n and value[look] in " \t":
            look += 1
        if look < n and value[look] == "=":
            pos = look + 1
            while pos < n and value[pos] in " \t":
                pos += 1
            if pos >= n or value[pos] in ",=":
                while pos < n and value[pos] == "=":  # token68 padding ("abc=="): skip it
                    pos += 1
                continue
            if value[pos] == '"':
                pos += 1
                chars: list[str] = []
                while pos < n and value[pos] != '"':
                    if value[pos] == "\\" and pos + 1 < n:
                        pos += 1
                    chars.append(value[pos])
                    pos += 1
                pos += 1  # closing quote
                param = "".join(chars)
            else:
                start = pos
                while pos < n and value[pos] not in " \t,":
                    pos += 1
                param = value[start:pos]
            if current is not None:
                current.params[token.lower()] = param
        else:
            current = Challenge(token.lower())
            out.append(current)
            pos = look
    return out


def is_stale(challenges: Iterable[Challenge]) -> bool:
    """True if a Digest challenge says the nonce merely expired (``stale=true``): the
    credentials were right, a retry with the new nonce is due."""
    return any(
        c.scheme == "digest" and c.params.get("stale", "").lower() == "true" for c in challenges
    )


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def new_cnonce() -> str:
    """A fresh client nonce: 128 random bits, hex."""
    return secrets.token_hex(16)


class Authenticator:
    """Produces ``Authorization`` header values for one camera login."""

    scheme: str = ""

    def header(self, method: str, uri: str) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:  # never the password, never the username either
        return f"<{type(self).__name__}>"


class BasicAuth(Authenticator):
    scheme = "basic"

    def __init__(self, username: str, password: str) -> None:
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._value = f"Basic {token}"

    def header(self, method: str, uri: str) -> str:
        return self._value


class DigestAuth(Authenticator):
    """Digest answers to one challenge; the nonce count increases with every request."""

    scheme = "digest"

    def __init__(
        self,
        username: str,
        password: str,
        challenge: Challenge,
        *,
        cnonce: Callable[[], str] = new_cnonce,
    ) -> None:
        p = challenge.params
        self.realm = p.get("realm", "")
        self.nonce = p.get("nonce", "")
        self.opaque = p.get("opaque")
        self.algorithm_param = p.get("algorithm")  # echoed only when the server sent it
        algorithm = (self.algorithm_param or "MD5").upper()
        self.sess = algorithm.endswith("-SESS")
        base_alg = algorithm.removesuffix("-SESS")
        if base_alg not in _ALGORITHMS:
            raise UnsupportedChallenge(f"Digest algorithm {algorithm} is not supported")
        self._hash = _ALGORITHMS[base_alg]
        qops = [q.strip().lower() for q in p.get("qop", "").split(",") if q.strip()]
        if not qops:
            self.qop: str | None = None
        elif "auth" in qops:
            self.qop = "auth"
        elif "auth-int" in qops:
            self.qop = "auth-int"
        else:
            raise UnsupportedChallenge(f"Digest qop {p.get('qop')!r} is not supported")
        self.userhash = p.get("userhash", "").lower() == "true"
        self.cnonce = cnonce()
        self.nc = 0
        h = self._h
        ha1 = h(f"{username}:{self.realm}:{password}")
        if self.sess:
            ha1 = h(f"{ha1}:{self.nonce}:{self.cnonce}")
        self._ha1 = ha1
        self._username = h(f"{username}:{self.realm}") if self.userhash else username

    def _h(self, text: str) -> str:
        return self._hash(text.encode("utf-8"))

    def response(self, method: str, uri: str) -> str:
        """The ``response`` value for the next request (increments the nonce count)."""
        self.nc += 1
        h = self._h
        a2 = f"{method}:{uri}"
        if self.qop == "auth-int":
            a2 += ":" + h("")
        ha2 = h(a2)
        if self.qop is None:
            return h(f"{self._ha1}:{self.nonce}:{ha2}")
        return h(f"{self._ha1}:{self.nonce}:{self.nc:08x}:{self.cnonce}:{self.qop}:{ha2}")

    def header(self, method: str, uri: str) -> str:
        resp = self.response(method, uri)
        parts = [
            f"username={_quote(self._username)}",
            f"realm={_quote(self.realm)}",
            f"nonce={_quote(self.nonce)}",
            f"uri={_quote(uri)}",
            f"response={_quote(resp)}",
        ]
        if self.algorithm_param is not None:
            parts.append(f"algorithm={self.algorithm_param}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        if self.qop is not None:
            parts += [f"qop={self.qop}", f"nc={self.nc:08x}", f"cnonce={_quote(self.cnonce)}"]
        if self.userhash:
            parts.append("userhash=true")
        return "Digest " + ", ".join(parts)


def choose(
    challenges: Iterable[Challenge],
    username: str,
    password: str,
    *,
    cnonce: Callable[[], str] = new_cnonce,
) -> Authenticator:
    """The authenticator for a 401's challenges: the strongest usable Digest challenge;
    Basic only when no Digest challenge is offered. Raises :class:`UnsupportedChallenge`
    when nothing is usable (including a Digest challenge we cannot answer next to a Basic
    one: sending the password in clear to a Digest-capable camera is not a fallback)."""
    challenges = list(challenges)
    digests = [c for c in challenges if c.scheme == "digest"]
    if digests:

        def rank(c: Challenge) -> int:
            alg = c.params.get("algorithm", "MD5").upper()
            return _PREFERENCE.index(alg) if alg in _PREFERENCE else len(_PREFERENCE)

        errors: list[str] = []
        for c in sorted(digests, key=rank):
            try:
                return DigestAuth(username, password, c, cnonce=cnonce)
            except UnsupportedChallenge as exc:
                errors.append(str(exc))
        raise UnsupportedChallenge("; ".join(errors))
    if any(c.scheme == "basic" for c in challenges):
        return BasicAuth(username, password)
    schemes = ", ".join(sorted({c.scheme for c in challenges})) or "none"
    raise UnsupportedChallenge(f"authentication scheme(s) not supported: {schemes}")
