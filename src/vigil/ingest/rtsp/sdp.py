"""Parsing the session description (SDP, RFC 4566) a camera answers DESCRIBE with.

Only what a recording client needs is kept: per media description its kind, payload type,
codec (``a=rtpmap``, or the static payload-type table of RFC 3551 when there is none), the
format parameters (``a=fmtp``, keys lowercased because cameras disagree on case), the frame
rate (``a=framerate``) and the control URL, resolved to an absolute URL.

Control URLs. RFC 2326 C.1.1 says relative controls are resolved against Content-Base, then
Content-Location, then the request URL, and ``*`` means the base itself. Servers, however,
are written against FFmpeg and live555, which *append* a relative control to the base
(inserting a ``/`` when the base does not end with one) instead of resolving it the RFC 3986
way: ``rtsp://cam/live`` + ``trackID=1`` must become ``rtsp://cam/live/trackID=1``, not
``rtsp://cam/trackID=1``. We do the same; a control starting with ``/`` replaces the path.
Userinfo is stripped from every resolved URL: a camera echoing credentials back in
Content-Base must not make us send them in a request line.

The input is bounded (64 KiB) and every malformed line is skipped, never fatal: cameras
produce creative SDP, and a line we do not understand is a line we do not need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

MAX_SDP_BYTES = 64 * 1024

MediaKind = Literal["video", "audio", "other"]

# RFC 3551 static payload types a camera may use without an a=rtpmap line:
# pt -> (encoding name, clock rate, channels)
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("PCMU", 8000, 1),
    3: ("GSM", 8000, 1),
    4: ("G723", 8000, 1),
    8: ("PCMA", 8000, 1),
    9: ("G722", 8000, 1),
    10: ("L16", 44100, 2),
    11: ("L16", 44100, 1),
    14: ("MPA", 90000, 1),
    18: ("G729", 8000, 1),
    26: ("JPEG", 90000, 1),
    32: ("MPV", 90000, 1),
    33: ("MP2T", 90000, 1),
    34: ("H263", 90000, 1),
}


class SdpError(ValueError):
    """The description is too large or not SDP at all."""


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """One ``m=`` section. ``encoding`` is upper-case (``H264``, ``MPEG4-GENERIC``);
    ``clock_rate`` is 0 when neither rtpmap nor the static table gives one."""

    kind: MediaKind
    media: str  # the raw media type of the m= line: video, audio, application, ...
    protocol: str  # RTP/AVP, RTP/AVPF, RTP/SAVP, ...
    payload_type: int
    encoding: str
    clock_rate: int
    channels: int
    fmtp: dict[str, str] = field(default_factory=dict)
    control: str = ""  # absolute URL
    framerate: Fraction | None = None


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """The parsed SDP: the aggregate control URL (for PLAY, keep-alives and TEARDOWN) and
    the media descriptions in SDP order."""

    control: str
    media: tuple[MediaDescription, ...]

    def first(self, kind: MediaKind) -> MediaDescription | None:
        return next((m for m in self.media if m.kind == kind), None)


def strip_userinfo(url: str) -> str:
    """``url`` without ``user:password@``; unparsable URLs are returned unchanged (they
    cannot carry userinfo we would recognise either)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def resolve_control(control: str, base: str) -> str:
    """The absolute URL of an SDP control attribute, FFmpeg/live555 style (module doc)."""
    control = control.strip()
    if not control or control == "*":
        return strip_userinfo(base)
    if "://" in control[:16]:  # absolute: rtsp://, rtsps://, rtspu://
        return strip_userinfo(control)
    if control.startswith("/"):
        try:
            parts = urlsplit(base)
        except ValueError:
            return strip_userinfo(base)
        path, _, query = control.partition("?")
        return strip_userinfo(urlunsplit((parts.scheme, parts.netloc, path, query, "")))
    sep = "" if base.endswith("/") else "/"
    return strip_userinfo(base + sep + control)


def parse_fmtp(params: str) -> dict[str, str]:
    """``a=fmtp`` parameters: ``key=value`` pairs separated by ``;``. Keys are lowercased;
    values keep their case and may contain ``=`` (base64 padding). A bare key maps to ""."""
    out: dict[str, str] = {}
    for item in params.split(";"):
        item = item.strip()
        if not item:
            continue
        key, _, value = item.partition("=")
        out[key.strip().lower()] = value.strip()
    return out


def _parse_framerate(value: str) -> Fraction | None:
    try:
        rate = Fraction(value.strip()).limit_denominator(1001)
    except (ValueError, ZeroDivisionError):
        return None
    return rate if 0 < rate <= 1000 else None


@dataclass(slots=True)
class _Media:
    """A media section while it is being read."""

    media: str
    protocol: str
    formats: list[str]
    rtpmap: dict[int, str] = field(default_factory=dict)
    fmtp: dict[int, str] = field(default_factory=dict)
    control: str | None = None
    framerate: Fraction | None = None


def parse_sdp(
    data: bytes | str,
    *,
    request_url: str,
    content_base: str | None = None,
    content_location: str | None = None,
) -> SessionDescription:
    """Parse a DESCRIBE answer's body. Raises :class:`SdpError` if it is over 64 KiB or has
    no ``v=`` line (an HTML page or garbage, not SDP)."""
    if len(data) > MAX_SDP_BYTES:
        raise SdpError(f"session description larger than {MAX_SDP_BYTES} bytes")
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    base = (content_base or content_location or request_url).strip()
    session_control: str | None = None
    session_framerate: Fraction | None = None
    sections: list[_Media] = []
    seen_version = False
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        if kind == "v":
            seen_version = True
        elif kind == "m":
            words = value.split()
            if len(words) >= 4:
                sections.append(_Media(words[0].lower(), words[2], words[3:]))
            else:  # malformed m= line: swallow its attributes rather than misattribute them
                sections.append(_Media("", "", []))
        elif kind == "a":
            name, _, attr = value.partition(":")
            name = name.strip().lower()
            cur = sections[-1] if sections else None
            if name == "control":
                if cur is None:
                    session_control = attr.strip()
                else:
                    cur.control = attr.strip()
            elif name in ("framerate", "x-framerate"):
                rate = _parse_framerate(attr)
                if cur is None:
                    session_framerate = rate
                else:
                    cur.framerate = rate
            elif cur is not None and name in ("rtpmap", "fmtp"):
                pt_text, _, rest = attr.strip().partition(" ")
                try:
                    pt = int(pt_text)
                except ValueError:
                    continue
                (cur.rtpmap if name == "rtpmap" else cur.fmtp)[pt] = rest.strip()
    if not seen_version:
        raise SdpError("not a session description (no v= line)")
    media = tuple(
        m
        for m in (_finish(s, base, session_framerate) for s in sections if s.media)
        if m is not None
    )
    return SessionDescription(
        control=resolve_control(session_control or "*", base),
        media=media,
    )


def _finish(s: _Media, base: str, session_framerate: Fraction | None) -> MediaDescription | None:
    try:
        pt = int(s.formats[0])
    except (IndexError, ValueError):
        return None  # not RTP (e.g. "m=application 0 TCP/WSP mpeg-dash")
    encoding, clock_rate, channels = STATIC_PAYLOAD_TYPES.get(pt, ("", 0, 1))
    rtpmap = s.rtpmap.get(pt)
    if rtpmap:
        parts = rtpmap.split("/")
        encoding = parts[0].strip()
        try:
            clock_rate = int(parts[1]) if len(parts) > 1 else clock_rate
            channels = int(parts[2]) if len(parts) > 2 else 1
        except ValueError:
            clock_rate, channels = 0, 1
    kind: MediaKind = s.media if s.media in ("video", "audio") else "other"  # type: ignore[assignment]
    return MediaDescription(
        kind=kind,
        media=s.media,
        protocol=s.protocol,
        payload_type=pt,
        encoding=encoding.upper(),
        clock_rate=max(0, clock_rate),
        channels=max(1, channels),
        fmtp=parse_fmtp(s.fmtp.get(pt, "")),
        control=resolve_control(s.control or "*", base),
        framerate=s.framerate or (session_framerate if kind == "video" else None),
    )
