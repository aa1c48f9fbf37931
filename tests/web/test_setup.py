"""Browser: first run. No account exists: the page offers to create the administrator
(from this machine only), logs them in, and shows the empty camera grid."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import PageErrors, screenshot


@pytest.fixture
def bare_api(tmp_path: Path) -> Iterator[str]:
    from vigil.api.live import router as live_router
    from vigil.api.passwords import fast_hasher
    from vigil.api.server import serve
    from vigil.api.state import AppContext
    from vigil.config.api_model import ApiConfig
    from vigil.config.loader import parse_config
    from vigil.index.db import Database
    from vigil.index.repository import Index
    from vigil.web import web_router

    cfg = parse_config({"storage": {"path": str(tmp_path / "store")}, "cameras": []})
    (tmp_path / "store").mkdir()
    index = Index(Database(cfg.database_url()), tmp_path / "store")
    ctx = AppContext(
        config=cfg,
        index=index,
        api=ApiConfig.model_validate(
            {"tls": {"enabled": False}, "export_dir": str(tmp_path / "exp"),
             "cache_dir": str(tmp_path / "cache")}
        ),
        hasher=fast_hasher(),
    )
    server = serve(ctx, host="127.0.0.1", port=0, tls=False, routers=(live_router, web_router()))
    try:
        yield server.url
    finally:
        server.stop()
        index.db.close()


def test_first_run_setup_creates_the_administrator(browser: Any, bare_api: str) -> None:
    context = browser.new_context(base_url=bare_api, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors = PageErrors()
    errors.attach(page)
    try:
        page.goto("/")
        page.wait_for_selector("text=Welcome to Vigil")
        page.fill("input[name=username]", "chief")
        page.fill("input[name=password]", "short")
        page.fill("input[name=password2]", "different")
        page.click("button[type=submit]")
        page.wait_for_selector("text=The two passwords differ.")
        for sel in ("input[name=password]", "input[name=password2]"):
            page.fill(sel, "a-Much-better-passphrase-8")
        screenshot(page, "00-first-run-setup")
        page.click("button[type=submit]")
        page.wait_for_selector("#topbar:not([hidden])")
        page.wait_for_selector("text=No cameras")
        assert "chief (admin)" in page.inner_text("#who-name")
        # a second visit goes to login, not setup
        page.goto("/#/setup")
        page.wait_for_selector("text=No cameras")
        assert [e for e in errors.errors if "status of 401" not in e] == []
    finally:
        context.close()
