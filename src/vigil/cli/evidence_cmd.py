"""`vigil timeline`, `vigil export`, `vigil verify` and `vigil events list`: finding footage,
exporting it as signed evidence, and proving that nothing was altered."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vigil.cli.common import (
    DEFAULT_CONFIG,
    ConfigOption,
    console,
    err_console,
    fail,
    load_or_exit,
    open_index,
)
from vigil.config.model import VigilConfig
from vigil.evidence.keys import KeyStore
from vigil.evidence.report import EvidenceError
from vigil.index.repository import Index
from vigil.util.timefmt import format_duration, format_time, parse_time


def _range(cfg: VigilConfig, camera: str, since: str, until: str) -> tuple[int, int]:
    if camera not in {c.name for c in cfg.cameras}:
        fail(f"unknown camera {camera!r}", 2)
    try:
        start, end = parse_time(since), parse_time(until)
    except ValueError as exc:
        fail(str(exc), 2)
    if end <= start:
        fail("--to must be after --from", 2)
    return start, end


def timeline_command(
    camera: Annotated[str, typer.Argument(help="Camera name.")],
    since: Annotated[str, typer.Option("--from", help="Start (ISO 8601, 'now', -2h).")] = "-1h",
    until: Annotated[str, typer.Option("--to", help="End (ISO 8601, 'now', -1h).")] = "now",
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Recorded spans, gaps (with reasons) and events of a camera over a time range."""
    from vigil.events.store import EventStore
    from vigil.events.timeline import timeline_with_events
    from vigil.evidence.timeline import TimeRangeError

    cfg = load_or_exit(config)
    start, end = _range(cfg, camera, since, until)
    store = EventStore(open_index(cfg))
    try:
        tl = timeline_with_events(store, camera, start, end)
    except TimeRangeError as exc:
        fail(str(exc), 2)
    rows: list[tuple[int, list[str]]] = []
    for s in tl.spans:
        rows.append(
            (
                s.start_us,
                [
                    "[green]recorded[/]",
                    format_time(s.start_us),
                    format_time(s.end_us),
                    format_duration(s.duration_us),
                    f"{s.segments} segment(s)",
                ],
            )
        )
    for g in tl.gaps:
        rows.append(
            (
                g.start_us,
                [
                    "[yellow]gap[/]",
                    format_time(g.start_us),
                    format_time(g.end_us),
                    format_duration(g.end_us - g.start_us),
                    f"{g.reason} {g.detail}".strip(),
                ],
            )
        )
    for e in tl.events:
        rows.append(
            (
                e.start_us,
                [
                    "[cyan]event[/]",
                    format_time(e.start_us),
                    format_time(e.end_us),
                    format_duration(e.end_us - e.start_us),
                    f"{e.label} ({e.reference})",
                ],
            )
        )
    table = Table(title=f"{camera}: {format_time(start)} .. {format_time(end)}")
    for col in ("what", "from", "to", "length", "detail"):
        table.add_column(col, overflow="fold")
    for _, cells in sorted(rows, key=lambda r: r[0]):
        table.add_row(*cells)
    console.print(table)
    console.print(
        f"recorded {format_duration(tl.recorded_us)} of {format_duration(end - start)}",
        highlight=False,
    )


def export_command(
    camera: Annotated[str, typer.Argument(help="Camera name.")],
    since: Annotated[str, typer.Option("--from", help="Start (ISO 8601, 'now', -2h).")],
    until: Annotated[str, typer.Option("--to", help="End (ISO 8601, 'now', -1h).")],
    reason: Annotated[str, typer.Option(help="Why this footage is exported (recorded).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory for the package.")],
    case: Annotated[str, typer.Option("--case", help="Case or incident reference.")] = "",
    by: Annotated[
        str | None, typer.Option(help="Who exports (default: the logged-in OS user).")
    ] = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Export a time range as a signed evidence package (clips, manifest, signature)."""
    from vigil.evidence.export import export_evidence

    cfg = load_or_exit(config)
    start, end = _range(cfg, camera, since, until)
    index = open_index(cfg)
    keys = _keys(cfg)
    output.mkdir(parents=True, exist_ok=True)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err_console
    ) as progress:
        task = progress.add_task("exporting", total=1.0)

        def on_progress(stage: str, fraction: float) -> None:
            progress.update(task, description=stage, completed=fraction)

        try:
            package = export_evidence(
                index,
                keys,
                camera,
                start,
                end,
                reason=reason,
                case_id=case,
                exported_by=by or f"{getpass.getuser()} (cli)",
                out_dir=output,
                progress=on_progress,
                max_range_us=int(cfg.evidence.max_export * 1e6),
            )
        except EvidenceError as exc:
            fail(str(exc), 1)
    console.print(f"[green]exported[/] {package}", highlight=False, soft_wrap=True)
    console.print(
        f"signing key fingerprint: [bold]{keys.active.fingerprint}[/]",
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"verify anywhere with: vigil verify {package}", highlight=False, soft_wrap=True)


def verify_command(
    package: Annotated[
        Path | None, typer.Argument(help="An evidence package directory to verify.")
    ] = None,
    storage: Annotated[
        bool, typer.Option("--storage", help="Verify the recorded footage and its hash chain.")
    ] = False,
    camera: Annotated[str | None, typer.Option(help="With --storage: only this camera.")] = None,
    fingerprint: Annotated[
        str | None,
        typer.Option(help="Expected signing key fingerprint (compare out of band)."),
    ] = None,
    config: ConfigOption = DEFAULT_CONFIG,
) -> None:
    """Verify an exported package offline, or (--storage) the whole store; names every
    modified, missing, inserted or reordered file. Exit status 1 when anything failed."""
    from vigil.evidence.verify import verify_package, verify_storage

    if (package is None) == (not storage):
        fail("give a PACKAGE directory or --storage", 2)
    if package is not None:
        if not package.is_dir():
            fail(f"{package}: not a directory", 2)
        report = verify_package(package, expected_fingerprint=fingerprint)
    else:
        cfg = load_or_exit(config)
        if camera is not None and camera not in {c.name for c in cfg.cameras}:
            fail(f"unknown camera {camera!r}", 2)
        index: Index = open_index(cfg)
        report = verify_storage(index, camera, keys=_keys(cfg))
    style = "green" if report.ok else "bold red"
    lines = report.summary().splitlines()
    # soft_wrap: fingerprints and paths must stay on one line to be compared and copied.
    console.print(f"[{style}]{lines[0]}[/]", highlight=False, soft_wrap=True)
    for line in lines[1:]:
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(1)


def _keys(cfg: VigilConfig) -> KeyStore:
    try:
        return KeyStore(cfg.key_dir())
    except EvidenceError as exc:
        fail(f"evidence key in {cfg.key_dir()}: {exc}", 1)


events_app = typer.Typer(help="Detected events.", no_args_is_help=True)


@events_app.command("list")
def events_list(
    config: ConfigOption = DEFAULT_CONFIG,
    camera: Annotated[str | None, typer.Option(help="Only this camera.")] = None,
    label: Annotated[str | None, typer.Option(help="Only this label (person, car, ...).")] = None,
    zone: Annotated[str | None, typer.Option(help="Only events that entered this zone.")] = None,
    since: Annotated[str | None, typer.Option("--from", help="Start time.")] = None,
    until: Annotated[str | None, typer.Option("--to", help="End time.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
) -> None:
    """Search events, newest first."""
    from vigil.events.store import EventStore

    cfg = load_or_exit(config)
    try:
        start = parse_time(since) if since else None
        end = parse_time(until) if until else None
    except ValueError as exc:
        fail(str(exc), 2)
    store = EventStore(open_index(cfg))
    page = store.search(
        camera=camera, label=label, zone=zone, start_us=start, end_us=end, limit=limit
    )
    table = Table(title="Events")
    for col in ("id", "camera", "label", "start", "length", "score", "zones", "snapshot"):
        table.add_column(col, overflow="fold")
    for e in page.items:
        length = format_duration(e.end_us - e.start_us) if e.end_us else "ongoing"
        table.add_row(
            e.id,
            e.camera,
            e.label,
            format_time(e.start_us),
            length,
            f"{e.max_score:.2f}",
            ", ".join(e.zones),
            e.snapshot or "",
        )
    console.print(table)


keys_app = typer.Typer(help="The instance signing key.", no_args_is_help=True)


@keys_app.command("show")
def keys_show(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Every public key this instance has had; give the fingerprint to recipients of
    exports so they can compare it out of band."""
    cfg = load_or_exit(config)
    keys = _keys(cfg)
    table = Table(title=f"Signing keys in {cfg.key_dir()}")
    for col in ("fingerprint", "created", "retired", "state"):
        table.add_column(col, overflow="fold")
    active = keys.active.key_id
    for k in keys.public_keys():
        state = "active" if k.key_id == active else ("retired" if k.retired_us else "")
        if not k.trusted:
            state = "[red]untrusted (no valid endorsement)[/]"
        table.add_row(k.fingerprint, format_time(k.created_us), format_time(k.retired_us), state)
    console.print(table, soft_wrap=True)


@keys_app.command("rotate")
def keys_rotate(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Create a new signing key, endorsed by the old one; old public keys are kept so
    older exports and chain signatures still verify. Run while the recorder is stopped."""
    cfg = load_or_exit(config)
    keys = _keys(cfg)
    old = keys.active.fingerprint
    try:
        new = keys.rotate()
    except EvidenceError as exc:
        fail(str(exc), 1)
    console.print(f"retired {old}\nactive  {new.fingerprint}", highlight=False, soft_wrap=True)
