"""The `tokenbench` command: one module per command group, each importing what it needs inside the command.

`tokenbench --help`, `report`, `compare` and `cost` never import torch; `run`, `list` and `env` do,
when they run.
"""

from __future__ import annotations

from typing import Annotated

import typer

import bench
from bench.cli import accept, cost, inventory, results, run

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    context_settings={"help_option_names": ["--help", "-h"]},
    help="tokenbench: LLM and kernel benchmarks in tokens/s, TFLOP/s and GB/s, on GPU or CPU.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tokenbench {bench.__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """tokenbench: LLM and kernel benchmarks in tokens/s, TFLOP/s and GB/s, on GPU or CPU."""


app.command("run")(run.run)
app.command("accept")(accept.accept)
app.command("cost")(cost.cost_)
app.command("report")(results.report)
app.command("compare")(results.compare)
app.command("list")(inventory.list_)
app.command("env")(inventory.env_)


def main() -> None:
    app()


__all__ = ["app", "main"]
