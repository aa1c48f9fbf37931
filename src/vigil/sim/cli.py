"""``vigil simulate``: serve simulated RTSP cameras until Ctrl-C.

How it is exposed: ``simulate`` is a plain Typer command function (all options declared
with ``Annotated``), so the main CLI registers it with ``main_app.command("simulate")(simulate)``.
``app`` is a ``typer.Typer()`` holding ``simulate`` as its single command, for standalone use
(``python -m vigil.sim.cli --cameras 4``; with one command Typer needs no sub-command name).

Cameras come either from the options (``--cameras N`` identical cameras named cam1..camN) or
from ``--config FILE``, a YAML list of cameras (or a mapping with a ``cameras`` list), each a
mapping of ``SimCamera`` fields; ``size: 1920x1080`` and ``bitrate`` (kbit/s) are accepted as
shorthands, and the command-line options give the defaults for fields a camera omits::

    cameras:
      - {name: door, source: vtest, size: 1920x1080, bitrate: 4000}
      - {name: yard, source: tree, codec: h265, audio: true}
      - {name: gate, username: admin, password: secret, transport: udp_only}
"""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from vigil.sim.controller import SimCamera, Simulator, SimulatorError
from vigil.sim.media import MediaError, parse_size


class CodecChoice(StrEnum):
    h264 = "h264"
    h265 = "h265"


def cameras_from_config(path: Path, defaults: dict[str, Any]) -> list[SimCamera]:
    """Read the YAML camera list; ``defaults`` fill the fields a camera leaves out."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    if isinstance(data, dict):
        data = data.get("cameras")
    if not isinstance(data, list) or not data:
        raise ValueError(f"{path}: expected a list of cameras (or a 'cameras:' list)")
    cams = []
    for i, item in enumerate(data, 1):
        if not isinstance(item, dict):
            raise ValueError(f"{path}: camera #{i} is not a mapping")
        entry = {"name": f"cam{i}", **item}
        try:
            cams.append(SimCamera.from_mapping(entry, **defaults))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: camera #{i}: {exc}") from exc
    return cams


def cameras_from_options(count: int, defaults: dict[str, Any]) -> list[SimCamera]:
    """``count`` identical cameras cam1..camN (one encoded clip, shared in memory)."""
    return [SimCamera(name=f"cam{i}", **defaults) for i in range(1, count + 1)]


def simulate(
    cameras: Annotated[
        int, typer.Option("--cameras", "-n", min=1, max=1000, help="Number of cameras.")
    ] = 4,
    source: Annotated[
        str, typer.Option(help="vtest (people), tree, testsrc (pattern) or a video file.")
    ] = "vtest",
    size: Annotated[str, typer.Option(help="Frame size, e.g. 1920x1080 or 720p.")] = "1280x720",
    fps: Annotated[float, typer.Option(min=1, max=120, help="Frames per second.")] = 15.0,
    bitrate: Annotated[int, typer.Option(min=16, help="Video bitrate in kbit/s.")] = 2000,
    codec: Annotated[CodecChoice, typer.Option(help="Video codec.")] = CodecChoice.h264,
    audio: Annotated[bool, typer.Option("--audio/--no-audio", help="Add AAC audio.")] = False,
    stamp: Annotated[
        bool, typer.Option("--stamp/--no-stamp", help="Burn frame numbers into frames.")
    ] = False,
    duration: Annotated[float, typer.Option(help="Clip (loop) length in seconds.")] = 10.0,
    port: Annotated[int, typer.Option(help="RTSP port (0: any free port).")] = 8554,
    bind: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 serves the LAN.")
    ] = "127.0.0.1",
    config: Annotated[
        Path | None,
        typer.Option("--config", exists=True, dir_okay=False, help="YAML list of cameras."),
    ] = None,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Clip cache (default $VIGIL_SIM_CACHE or ~/.cache).")
    ] = None,
    prepare_only: Annotated[
        bool, typer.Option("--prepare-only", help="Encode the clips into the cache and exit.")
    ] = False,
) -> None:
    """Serve simulated RTSP cameras from real footage or test patterns until Ctrl-C."""
    console = Console(stderr=True)
    out = Console()
    try:
        width, height = parse_size(size)
        defaults: dict[str, Any] = {
            "source": source,
            "width": width,
            "height": height,
            "fps": fps,
            "bitrate_kbps": bitrate,
            "codec": codec.value,
            "audio": audio,
            "stamp": stamp,
            "duration": duration,
        }
        cams = (
            cameras_from_config(config, defaults)
            if config is not None
            else cameras_from_options(cameras, defaults)
        )
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc

    def progress(msg: str) -> None:
        console.print(f"[dim]{msg}[/]")

    sim = Simulator(host=bind, port=port, cache_dir=cache_dir, progress=progress)
    try:
        if prepare_only:
            for clip in sim.prepare(cams):
                out.print(str(clip.path))
            return
        sim.start(cams)
        table = Table(title=f"{len(cams)} simulated camera(s) on port {sim.port}")
        table.add_column("camera")
        table.add_column("URL", overflow="fold")
        table.add_column("video")
        table.add_column("notes")
        for cam in cams:
            notes = [cam.source]
            if cam.audio:
                notes.append("AAC")
            if cam.transport != "any":
                notes.append(cam.transport)
            if cam.username:
                notes.append("auth")
            video = f"{cam.codec} {cam.width}x{cam.height} {cam.fps:g}fps {cam.bitrate_kbps}k"
            table.add_row(cam.name, sim.url(cam.name, credentials=True), video, ", ".join(notes))
        out.print(table)
        console.print("Press Ctrl-C to stop.")
        while sim.running:
            time.sleep(0.5)
        console.print("[red]error:[/] the RTSP server exited unexpectedly")
        raise typer.Exit(1)
    except KeyboardInterrupt:
        console.print("stopping")
    except (SimulatorError, MediaError, ValueError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    finally:
        sim.close()


app = typer.Typer(add_completion=False, help="Simulated RTSP cameras for demos and tests.")
app.command("simulate")(simulate)


if __name__ == "__main__":
    app()
