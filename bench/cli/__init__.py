"""The `tokenbench` command: one module per command group, each importing what it needs inside the command.

`tokenbench --help`, `report`, `compare` and `cost` never import torch; `run`, `list` and `env` do,
when they run.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
from typing import Annotated, NoReturn


def _interrupted_while_loading(_signum: int, _frame: object) -> None:
    sys.stderr.write("tokenbench: interrupted while starting; nothing was measured\n")
    raise SystemExit(130)


# A Ctrl-C while the command line loads (a tenth of a second) is one line too, not an import
# traceback; the handler that was there (Python's, or an inherited "ignore") is back once it has.
_loading = signal.getsignal(signal.SIGINT) is signal.default_int_handler
if _loading:
    signal.signal(signal.SIGINT, _interrupted_while_loading)

import typer  # noqa: E402

import bench  # noqa: E402
from bench.cli import accept, compare, cost, inventory, report, run, serve  # noqa: E402
from bench.measure import lifeline  # noqa: E402

if _loading:
    signal.signal(signal.SIGINT, signal.default_int_handler)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,  # help shown as written: [[gpu]], [sensitivity], <run-id>; no <bool> on flags
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
app.command("report")(report.report)
app.command("compare")(compare.compare)
app.command("list")(inventory.list_)
app.command("env")(inventory.env_)
app.command("serve")(serve.serve)


def main() -> None:
    if lifeline.under_torchrun():  # first thing: a rank whose torchrun is killed must not run on
        lifeline.die_with_parent()
    try:
        app()
    except KeyboardInterrupt:  # before a command could answer it: while starting up
        _leave_quietly("tokenbench: interrupted while starting; nothing was measured", 130)
    except OSError as e:
        if e.errno not in OUTPUT_ERRORS:
            raise
        _leave_quietly(f"tokenbench: error: cannot write the output ({e.strerror or e})", 1)


OUTPUT_ERRORS = (errno.ENOSPC, errno.EIO, errno.EFBIG, errno.EDQUOT)  # `report > /dev/full`, a full disk


def _leave_quietly(message: str, code: int) -> NoReturn:
    """One line on stderr, and no second error when Python flushes a stdout that cannot be written."""
    with contextlib.suppress(OSError):
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(code)


__all__ = ["app", "main"]
