"""`vigil config check|schema`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vigil.cli.common import console, load_or_exit
from vigil.config.loader import json_schema

app = typer.Typer(help="Validate the configuration and print its schema.", no_args_is_help=True)


@app.command("check")
def check(file: Annotated[Path, typer.Argument(help="Configuration file to validate.")]) -> None:
    """Validate FILE; print every problem with its field path and exit 2 if any."""
    cfg = load_or_exit(file)
    console.print(
        f"[green]ok[/] {file}: {len(cfg.cameras)} camera(s), storage {cfg.storage.path}",
        highlight=False,
    )


@app.command("schema")
def schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead.")
    ] = None,
) -> None:
    """Print the JSON schema of the configuration file."""
    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)


@app.command("docs")
def docs(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead.")
    ] = None,
) -> None:
    """Print the Markdown documentation of every configuration option."""
    from vigil.config.docs import render

    text = render()
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
