"""The `vigil` command. Each sub-command is a thin shell over a service module, so the API
and the CLI behave the same."""

from __future__ import annotations

import typer

from vigil import __version__
from vigil.cli import (
    config_cmd,
    evidence_cmd,
    recordings_cmd,
    run_cmd,
    status_cmd,
    user_cmd,
)
from vigil.sim.cli import simulate

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


app.command("run")(run_cmd.run)
app.command("demo")(run_cmd.demo)
app.command("simulate")(simulate)
app.command("timeline")(evidence_cmd.timeline_command)
app.command("export")(evidence_cmd.export_command)
app.command("verify")(evidence_cmd.verify_command)
app.add_typer(evidence_cmd.events_app, name="events")
app.add_typer(evidence_cmd.keys_app, name="keys")
app.add_typer(user_cmd.app, name="user")
app.add_typer(user_cmd.token_app, name="token")

if __name__ == "__main__":  # pragma: no cover
    app()
