"""Shared CLI plumbing: config loading that exits 2 with every problem listed, and the
index opened read-write for commands that only report (migrations run, so a fresh install
works)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from vigil.config.loader import ConfigError, load_config
from vigil.config.model import VigilConfig
from vigil.index.db import Database
from vigil.index.repository import Index
from vigil.util.redact import redact_text

console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        envvar="VIGIL_CONFIG",
        help="Configuration file (YAML).",
        show_default=True,
    ),
]
DEFAULT_CONFIG = Path("vigil.yaml")


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {redact_text(message)}", highlight=False)
    raise typer.Exit(code)


def load_or_exit(path: Path) -> VigilConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        for p in exc.problems:
            err_console.print(
                f"[bold red]config error[/] {p.file}: [bold]{p.field}[/]: {p.reason}",
                highlight=False,
                markup=True,
            )
        raise typer.Exit(2) from None


def open_index(cfg: VigilConfig) -> Index:
    cfg.storage.path.mkdir(parents=True, exist_ok=True)
    return Index(Database(cfg.database_url()), cfg.storage.path)
