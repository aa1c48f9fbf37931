"""`vigil status` and `vigil cameras list|test`: camera health as the recorder last wrote it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vigil.cli.common import DEFAULT_CONFIG, ConfigOption, console, fail, load_or_exit, open_index
from vigil.util.redact import redact_url
from vigil.util.timefmt import format_bytes, format_time

STATE_STYLE = {
    "online": "green",
    "connecting": "yellow",
    "stalled": "red",
    "offline": "red",
    "stopped": "dim",
    "disabled": "dim",
}
# A status row older than this means the recorder is not running (or not writing).
STALE_AFTER_US = 15_000_000


def status(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Per-camera health: state, fps, bitrate, last packet, reconnects, recording, disk use."""
    cfg = load_or_exit(config)
    index = open_index(cfg)
    rows = {r.camera: r for r in index.statuses()}
    usage = index.usage()
    now = time.time_ns() // 1000
    table = Table(title="Vigil status")
    for col in (
        "camera",
        "state",
        "fps",
        "bitrate",
        "video",
        "last packet",
        "reconnects",
        "recording",
        "stored",
        "detail",
    ):
        table.add_column(col, overflow="fold")
    for cam in cfg.cameras:
        r = rows.get(cam.name)
        count, size = usage.get(cam.name, (0, 0))
        stored = f"{format_bytes(size)} ({count} seg)"
        if r is None:
            table.add_row(cam.name, "[dim]never run[/]", "", "", "", "", "", "", stored, "")
            continue
        state = r.state
        detail = r.detail
        if now - r.updated_us > STALE_AFTER_US:
            state, detail = (
                "unknown",
                f"recorder not running (last update {format_time(r.updated_us)})",
            )
        style = STATE_STYLE.get(state, "yellow")
        table.add_row(
            cam.name,
            f"[{style}]{state}[/]",
            f"{r.fps:.1f}",
            f"{r.bitrate / 1e6:.2f} Mb/s",
            f"{r.codec} {r.width}x{r.height}" if r.codec else "",
            format_time(r.last_packet_us),
            str(r.reconnects),
            r.recording,
            stored,
            detail,
        )
    console.print(table)


cameras_app = typer.Typer(help="Configured cameras and connection tests.", no_args_is_help=True)


@cameras_app.command("list")
def cameras_list(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """The cameras in the configuration (URLs shown without credentials)."""
    cfg = load_or_exit(config)
    table = Table(title="Cameras")
    for col in ("name", "title", "enabled", "main", "sub", "record", "retention"):
        table.add_column(col, overflow="fold")
    for cam in cfg.cameras:
        pol = cfg.retention_for(cam.name)
        ret = []
        if pol.max_age:
            ret.append(f"{pol.max_age / 86400:g}d")
        if pol.max_bytes:
            ret.append(format_bytes(pol.max_bytes))

        def src(s: object) -> str:
            if s is None:
                return ""
            url = getattr(s, "url", None)
            return redact_url(url) if url else str(getattr(s, "file", ""))

        table.add_row(
            cam.name,
            cam.title or "",
            "yes" if cam.enabled else "no",
            src(cam.main),
            src(cam.sub),
            "yes" if cam.recording.enabled else "no",
            " / ".join(ret) or "none",
        )
    console.print(table)


@cameras_app.command("test")
def cameras_test(
    url: Annotated[str, typer.Argument(help="rtsp://, http(s):// URL or a local file path.")],
    username: Annotated[str | None, typer.Option(help="Camera user name.")] = None,
    password_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the password.")
    ] = None,
    transport: Annotated[str, typer.Option(help="tcp or udp (RTSP).")] = "tcp",
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 10.0,
) -> None:
    """Connect to a stream and report codec, resolution, frame rate and audio."""
    from pydantic import ValidationError

    from vigil.config.model import Credentials, StreamSource
    from vigil.ingest.probe import probe

    try:
        if "://" in url:
            source = StreamSource(url=url, transport=transport)  # type: ignore[arg-type]
        else:
            source = StreamSource(file=Path(url).resolve(), transport=transport)  # type: ignore[arg-type]
        creds = (
            Credentials(username=username, password_env=password_env or "VIGIL_CAMERA_PASSWORD")
            if username
            else None
        )
    except ValidationError as exc:
        msgs = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        fail(f"{redact_url(url)}: {msgs}", 2)
    with console.status(f"connecting to {redact_url(url)} ..."):
        result = probe(source, creds, timeout=timeout)
    if not result.ok:
        fail(f"{result.source}: {result.error_kind}: {result.error}", 1)
    table = Table(title=result.source)
    table.add_column("property")
    table.add_column("value")
    rows = [
        ("format", result.format or ""),
        ("video", f"{result.video_codec} {result.width}x{result.height}"),
        ("frame rate", f"{result.fps:.2f} fps" if result.fps else "unknown"),
        (
            "keyframe interval",
            f"{result.keyframe_interval_s:.2f} s" if result.keyframe_interval_s else "unknown",
        ),
        ("bitrate", f"{result.bitrate_bps / 1e6:.2f} Mbit/s" if result.bitrate_bps else "unknown"),
        (
            "audio",
            f"{result.audio.codec} {result.audio.sample_rate} Hz {result.audio.channels} ch"
            if result.audio
            else "none",
        ),
        ("opened in", f"{result.open_seconds:.2f} s"),
        ("packets read", str(result.packets)),
    ]
    rows += [("note", n) for n in result.notes]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
