"""`vigil recordings list`: what is on disk, according to the index."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from vigil.cli.common import DEFAULT_CONFIG, ConfigOption, console, fail, load_or_exit, open_index
from vigil.util.timefmt import format_bytes, format_duration, format_time, parse_time

app = typer.Typer(help="Recorded segments.", no_args_is_help=True)


@app.command("list")
def list_recordings(
    config: ConfigOption = DEFAULT_CONFIG,
    camera: Annotated[str | None, typer.Option(help="Only this camera.")] = None,
    since: Annotated[
        str | None, typer.Option("--from", help="Start (ISO 8601, 'now', or -2h).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--to", help="End (ISO 8601, 'now', or -1h).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 1000,
    gaps: Annotated[bool, typer.Option("--gaps/--no-gaps", help="Show gaps too.")] = True,
) -> None:
    """List segments (and gaps) overlapping a time range."""
    cfg = load_or_exit(config)
    try:
        start = parse_time(since) if since else None
        end = parse_time(until) if until else None
    except ValueError as exc:
        fail(str(exc), 2)
    if start is not None and end is not None and end <= start:
        fail("--to must be after --from", 2)
    if camera is not None and camera not in {c.name for c in cfg.cameras}:
        fail(f"unknown camera {camera!r}", 2)
    index = open_index(cfg)
    rows: list[tuple[int, str, list[str]]] = []
    for name, seg in index.segments(camera, start, end, limit=limit):
        res = f"{seg.width}x{seg.height}"
        codec = seg.video_codec + (f"+{seg.audio_codec}" if seg.audio_codec else "")
        rows.append(
            (
                seg.start_us,
                "segment",
                [
                    name,
                    format_time(seg.start_us),
                    format_duration(seg.duration_us),
                    f"{codec} {res}",
                    format_bytes(seg.bytes),
                    str(seg.packets),
                    seg.path + (" (recovered)" if seg.recovered else ""),
                ],
            )
        )
    if gaps:
        for name, gap in index.gaps(camera, start, end):
            rows.append(
                (
                    gap.start_us,
                    "gap",
                    [
                        name,
                        format_time(gap.start_us),
                        format_duration(gap.end_us - gap.start_us),
                        f"[yellow]gap: {gap.reason}[/]",
                        "",
                        "",
                        gap.detail,
                    ],
                )
            )
    rows.sort(key=lambda r: (r[0], r[1]))
    table = Table(title="Recordings")
    for col in ("camera", "start", "duration", "codec", "size", "packets", "file"):
        table.add_column(col, overflow="fold")
    for _, _, cells in rows:
        table.add_row(*cells)
    console.print(table)
    n = sum(1 for r in rows if r[1] == "segment")
    console.print(f"{n} segment(s)", highlight=False)
