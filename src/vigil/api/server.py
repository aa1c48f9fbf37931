"""Serving the API from inside the recorder process.

:func:`serve` runs uvicorn in a daemon thread with its own event loop, so ``vigil run``
keeps its main thread (signals, the recorder's lifecycle) and stops the API with
:meth:`ApiServer.stop`. uvicorn's own proxy-header handling is off: the API decides which
proxies to trust (``api.trusted_proxies``), and the ``Server`` header is not sent.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from fastapi import APIRouter

from vigil.api.app import create_app
from vigil.api.state import AppContext
from vigil.api.tls import fingerprint, tls_files

log = logging.getLogger(__name__)


@dataclass
class ApiServer:
    """A running API server. ``url`` is where it listens (with the actual port when 0
    was asked for)."""

    server: uvicorn.Server
    thread: threading.Thread
    url: str
    cert: Path | None

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout)


def serve(
    ctx: AppContext,
    host: str | None = None,
    port: int | None = None,
    *,
    tls: bool | None = None,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    routers: tuple[APIRouter, ...] = (),
    ready_timeout: float = 15.0,
) -> ApiServer:
    """Start the API for ``ctx`` in a background thread and return once it accepts
    connections. ``host``/``port``/``tls`` default to ``ctx``'s API configuration;
    ``certfile``/``keyfile`` override it (else the configured pair, else a self-signed
    certificate in ``api.tls.self_signed_dir``). Raises ``RuntimeError`` if it does not
    come up (port in use, unreadable key)."""
    cfg = ctx.api_config()
    host = host if host is not None else cfg.host
    port = port if port is not None else cfg.port
    use_tls = cfg.tls.enabled if tls is None else tls
    files: tuple[Path, Path] | None = None
    if use_tls:
        if certfile is not None and keyfile is not None:
            files = (certfile, keyfile)
        else:
            files = tls_files(cfg.tls.model_copy(update={"enabled": True}), ctx.index.root)
    app = create_app(ctx, routers=routers)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(files[0]) if files else None,
        ssl_keyfile=str(files[1]) if files else None,
        proxy_headers=False,
        server_header=False,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + ready_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the API could not start on {host}:{port} (see the log)")
        time.sleep(0.02)
    actual = port
    for srv in getattr(server, "servers", []):
        for sock in getattr(srv, "sockets", []):
            actual = sock.getsockname()[1]
            break
    scheme = "https" if files else "http"
    shown = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{shown}:{actual}"
    if files:
        log.info("API listening on %s (certificate SHA-256 %s)", url, fingerprint(files[0]))
    else:
        log.info("API listening on %s (no TLS)", url)
    return ApiServer(server, thread, url, files[0] if files else None)
