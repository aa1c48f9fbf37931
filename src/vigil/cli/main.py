"""The `vigil` command. Each sub-command is a thin shell over a service module, so the API
and the CLI behave the same."""

from __future__ import annotations

import typer

from vigil import __version__
from vigil.cli import config_cmd, recordings_cmd, status_cmd

app = typer.Typer(
    name="vigil",
    help="Vigil network video recorder.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals can hold secrets
    add_completion=False,
)
app.add_typer(config_cmd.app, name="config")
app.add_typer(recordings_cmd.app, name="recordings")
app.add_typer(status_cmd.cameras_app, name="cameras")
app.command("status")(status_cmd.status)


@app.command("version")
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def _register_optional() -> None:
    """Commands whose modules are larger are imported here so a missing optional part
    cannot break `vigil config check`."""
    from vigil.cli import run_cmd

    app.command("run")(run_cmd.run)
    app.command("demo")(run_cmd.demo)
    try:
        from vigil.sim.cli import simulate_command
    except ImportError:  # pragma: no cover - the simulator ships with the package
        return
    app.command("simulate")(simulate_command)


_register_optional()

if __name__ == "__main__":  # pragma: no cover
    app()
