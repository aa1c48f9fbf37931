"""A real Vigil for browser tests: simulated RTSP cameras, the NVR recording them with live
hubs attached, the API with the web UI on a free port, and Debian's Chromium driven by
Playwright. Everything is started once per module and always stopped.

Never downloads a browser: ``/usr/bin/chromium`` (Debian's ``chromium`` package) is used
as it is, and the tests skip with the reason when it or Playwright is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.sim.conftest import require_rtsp_server
from vigil.api.accounts import Accounts, Grant
from vigil.api.passwords import fast_hasher
from vigil.config.api_model import ApiConfig
from vigil.config.loader import parse_config
from vigil.config.model import VigilConfig
from vigil.live import LiveRegistry
from vigil.sim.controller import SimCamera, Simulator

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--autoplay-policy=no-user-gesture-required",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"

ADMIN = ("admin", "watchful-owl-Lantern-42")
VIEWER = ("yardonly", "quiet-river-Stone-77")
EVIL_TITLE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>Gate & "Co"'

SMALL: dict[str, Any] = {
    "source": "testsrc",
    "width": 320,
    "height": 240,
    "fps": 15.0,
    "bitrate_kbps": 300,
    "duration": 8.0,
    "gop_seconds": 1.0,
}


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; no browser download)"
    return None


@dataclass
class Vigil:
    url: str
    root: Path
    cfg: VigilConfig
    nvr: Any
    registry: LiveRegistry
    sim: Simulator
    accounts: Accounts
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def index(self) -> Any:
        return self.nvr.index

    def spans(self, camera: str) -> list[tuple[int, int]]:
        return [(s.start_us, s.end_us) for _c, s in self.index.segments(camera)]

    def wait_footage(self, camera: str, seconds: float, timeout: float = 60.0) -> None:
        """Until at least ``seconds`` of ``camera`` are indexed (segments close every
        ``segment_seconds``; only closed segments can be played back)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            total = sum(e - s for s, e in self.spans(camera)) / 1e6
            if total >= seconds:
                return
            time.sleep(0.5)
        raise AssertionError(f"{camera}: less than {seconds}s recorded after {timeout}s")


def _config(root: Path, sim: Simulator) -> VigilConfig:
    cams = [
        {"name": "door", "title": "Front door", "main": {"url": sim.url("door")}},
        {"name": "yard", "title": "Yard", "main": {"url": sim.url("yard")}},
        {"name": "garage", "title": "Garage (H.265)", "main": {"url": sim.url("garage")}},
        {"name": "gate", "title": EVIL_TITLE, "main": {"url": sim.url("gate")}},
    ]
    for c in cams:
        c["recording"] = {"audio": False}
    data = {
        "storage": {"path": str(root / "store"), "min_free_bytes": 0, "min_free_percent": 0},
        "recording": {"segment_seconds": 2, "fragment_seconds": 1},
        "ingest": {"stall_timeout": 5, "open_timeout": 5, "backoff_initial": 0.3,
                   "backoff_max": 2},
        "logging": {"level": "WARNING"},
        "cameras": cams,
    }
    return parse_config(data, str(root / "vigil.yaml"))


@pytest.fixture(scope="module")
def vigil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vigil]:
    reason = _missing()
    if reason:
        pytest.fail(f"{reason}: run scripts/setup.sh", pytrace=False)
    require_rtsp_server()
    from vigil.api.live import router as live_router
    from vigil.api.server import serve
    from vigil.api.state import AppContext
    from vigil.runtime import nvr as nvr_mod
    from vigil.web import web_router

    root = tmp_path_factory.mktemp("vigil-web")

    with contextlib.ExitStack() as stack:
        sim = stack.enter_context(Simulator())
        sim.start(
            [
                SimCamera("door", stamp=True, **SMALL),
                SimCamera("yard", **SMALL),
                SimCamera("garage", codec="h265", **SMALL),
                SimCamera("gate", **SMALL),
            ]
        )
        cfg = _config(root, sim)
        nvr = nvr_mod.NVR(cfg, node="test")
        nvr.open()
        stack.callback(nvr.stop)
        nvr.start()
        registry = nvr.live  # the NVR attaches a live hub to every reader it makes
        api_cfg = ApiConfig.model_validate(
            {
                "tls": {"enabled": False},
                "export_dir": str(root / "exports"),
                "cache_dir": str(root / "cache"),
            }
        )
        ctx = AppContext(
            config=cfg,
            index=nvr.index,
            keys=nvr.keys,
            events=nvr.notifier.store if nvr.notifier else None,
            nvr=nvr,
            api=api_cfg,
            hasher=fast_hasher(),
            live_snapshot=registry.snapshot,
        )
        server = serve(ctx, host="127.0.0.1", port=0, tls=False,
                       routers=(live_router, web_router()))
        stack.callback(server.stop)
        accounts = Accounts(nvr.index.db, fast_hasher())
        accounts.create_user(ADMIN[0], ADMIN[1], "admin")
        accounts.create_user(VIEWER[0], VIEWER[1], "viewer")
        accounts.set_grants(VIEWER[0], [Grant("yard", frozenset({"view_live", "view_recordings"}))])
        v = Vigil(server.url, root, cfg, nvr, registry, sim, accounts)
        yield v


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _missing()
    if reason:
        pytest.fail(f"{reason}: run scripts/setup.sh", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class PageErrors:
    """Console errors and uncaught exceptions of a page (a CSP violation shows up here)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def attach(self, page: Any) -> None:
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on(
            "console",
            lambda msg: self.errors.append(f"console: {msg.text}") if msg.type == "error" else None,
        )

    def unexpected(self, allowed: tuple[str, ...] = ()) -> list[str]:
        # failed resource loads (404 for a refused camera, a WebSocket a test closes) are
        # reported as console errors too; tests name what they expect
        return [e for e in self.errors if not any(a in e for a in allowed)]


@pytest.fixture
def page(browser: Any, vigil: Vigil) -> Iterator[Any]:
    context = browser.new_context(
        base_url=vigil.url, viewport={"width": 1280, "height": 860}, accept_downloads=True
    )
    pg = context.new_page()
    errs = PageErrors()
    errs.attach(pg)
    pg.errors = errs
    try:
        yield pg
    finally:
        context.close()


def login(page: Any, user: tuple[str, str]) -> None:
    page.goto("/#/login")
    page.fill("input[name=username]", user[0])
    page.fill("input[name=password]", user[1])
    page.click("button[type=submit]")
    page.wait_for_selector("#topbar:not([hidden])")
    # the page asks who is logged in before anyone is: that 401 is expected
    page.errors.errors[:] = [e for e in page.errors.errors if "status of 401" not in e]


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


@pytest.fixture(scope="session", autouse=True)
def _copy_screenshots() -> Iterator[None]:
    """With ``VIGIL_UPDATE_SCREENSHOTS=1`` the final set is copied to docs/screenshots/
    (committed with the docs); otherwise they stay in test-artifacts/ only."""
    yield
    if os.environ.get("VIGIL_UPDATE_SCREENSHOTS") == "1" and SCREENSHOTS.exists():
        dest = ROOT / "docs" / "screenshots"
        dest.mkdir(parents=True, exist_ok=True)
        for png in SCREENSHOTS.glob("*.png"):
            shutil.copy2(png, dest / png.name)
