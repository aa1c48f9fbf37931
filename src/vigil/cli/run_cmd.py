"""`vigil run` (record the configured cameras) and `vigil demo` (the same, with simulated
cameras and a generated configuration, for trying Vigil out)."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
import yaml

from vigil.api.server import ApiServer, serve
from vigil.api.state import AppContext
from vigil.cli.common import DEFAULT_CONFIG, ConfigOption, console, fail, load_or_exit
from vigil.config.model import VigilConfig
from vigil.runtime.nvr import NVR, StartupError
from vigil.util.log import setup_logging
from vigil.util.redact import register_secret

log = logging.getLogger(__name__)


def _register_secrets(cfg: VigilConfig) -> None:
    for cam in cfg.cameras:
        if cam.credentials is not None:
            with contextlib.suppress(LookupError):  # reported when the camera is opened
                register_secret(cam.credentials.resolve_password())


def run_nvr(cfg: VigilConfig, ready: threading.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM; close segments cleanly on the way out."""
    setup_logging(cfg.logging.level, cfg.logging.format)
    _register_secrets(cfg)
    nvr = NVR(cfg)
    try:
        nvr.open()
        nvr.start()
    except StartupError as exc:
        fail(str(exc), 1)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nvr.request_stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    server = None
    try:
        if cfg.api.enabled:
            server = start_api(nvr)
            log.info("web UI and API on %s", server.url)
            console.print(f"[bold]web UI:[/] {server.url}/", highlight=False)
        if ready is not None:
            ready.set()
        while not nvr.wait(1.0):
            pass
    except RuntimeError as exc:  # the API could not start (port in use, bad certificate)
        log.error("%s", exc)
        nvr.request_stop()
        raise typer.Exit(1) from None
    finally:
        if server is not None:
            server.stop()
        nvr.stop()
        for s, h in previous.items():
            signal.signal(s, h)


def start_api(nvr: NVR) -> ApiServer:
    """Serve the API and the web UI from the recorder process, over its live state."""
    from vigil.api.live import router as live_router
    from vigil.web.mount import web_router

    assert nvr.index is not None and nvr.notifier is not None
    ctx = AppContext(
        nvr.config,
        nvr.index,
        keys=nvr.keys,
        events=nvr.notifier.store,
        nvr=nvr,
        live_snapshot=nvr.live.snapshot,
    )
    return serve(ctx, routers=(live_router, web_router()))


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def run(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """Record every enabled camera until stopped (Ctrl-C or SIGTERM)."""
    cfg = load_or_exit(config)
    run_nvr(cfg)


DEMO_CAMERAS = [
    # name, source, size, fps, kbit/s, audio
    ("hall", "vtest", (768, 576), 10.0, 1000, False),
    ("garden", "tree", (640, 480), 10.0, 800, False),
    ("pattern", "testsrc", (1280, 720), 15.0, 1500, True),
]


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo keeps its config and footage.")
    ] = Path("demo-data"),
    port: Annotated[int, typer.Option(help="RTSP port of the simulated cameras (0: any).")] = 0,
    web_port: Annotated[int, typer.Option(help="Port of the web UI on 127.0.0.1.")] = 8080,
) -> None:
    """Start three simulated cameras (real footage over a real RTSP server) and record them."""
    from vigil.sim.controller import SimCamera, Simulator

    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    cams = [
        SimCamera(name=n, source=src, width=w, height=h, fps=fps, bitrate_kbps=kbps, audio=audio)
        for n, src, (w, h), fps, kbps, audio in DEMO_CAMERAS
    ]
    with Simulator(port=port, progress=lambda m: console.print(f"[dim]{m}[/]")) as sim:
        sim.start(cams)
        cfg_path = directory / "vigil.yaml"
        analytics = {
            "enabled": True,
            "fps": 5,
            "labels": ["person"],
            "lines": [{"name": "hall-crossing", "points": [[0.4, 0.05], [0.4, 0.95]]}],
            "zones": [
                {"name": "far-end", "polygon": [[0.0, 0.0], [1.0, 0.0], [1.0, 0.45], [0.0, 0.45]]}
            ],
        }
        data: dict[str, Any] = {
            "storage": {
                "path": str(directory / "recordings"),
                "min_free_bytes": "1GB",
                "min_free_percent": 2,
            },
            "recording": {"segment_seconds": 60},
            # Plain HTTP on the loopback interface only: nothing leaves this machine, and a
            # browser shows no certificate warning. Real installations keep TLS on.
            "api": {"host": "127.0.0.1", "port": web_port, "tls": {"enabled": False}},
            "retention": {"max_age": "1d", "max_bytes": "2GB"},
            "cameras": [
                {
                    "name": c.name,
                    "title": c.name.title(),
                    "main": {"url": sim.url(c.name)},
                    **({"analytics": analytics} if c.source == "vtest" else {}),
                }
                for c in cams
            ],
        }
        if _port_open("127.0.0.1", 1883):
            # The local broker that `make demo` starts; the demo's own choice, visible in
            # the generated file (Vigil itself never connects anywhere unconfigured).
            data["events"] = {"mqtt": {"host": "127.0.0.1", "port": 1883}}
        cfg_path.write_text(
            "# Generated by `vigil demo` (the simulator's port changes between runs).\n"
            + yaml.safe_dump(data, sort_keys=False)
        )
        cfg = load_or_exit(cfg_path)
        console.print(
            f"[bold green]Vigil demo[/]: recording {len(cams)} simulated cameras into "
            f"{directory / 'recordings'}\n"
            f"  in another terminal: [bold].venv/bin/vigil status -c {cfg_path}[/]\n"
            f"                       [bold].venv/bin/vigil recordings list -c {cfg_path}[/]\n"
            f"                       [bold].venv/bin/vigil events list -c {cfg_path}[/]\n"
            f"  web UI: [bold]http://127.0.0.1:{web_port}/[/] (first visit: create the admin)\n"
            "  stop with Ctrl-C",
            highlight=False,
        )
        run_nvr(cfg)
