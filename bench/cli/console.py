"""Where the commands print: results on stdout, errors and warnings on stderr, one line each."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import typer
from rich.console import Console

from bench.text import plain

PIPE_WIDTH = 160  # logs and pipes get a fixed width so tables do not fold into an 80-column mess


def stdout_width() -> int | None:
    """The width tables are laid out for: the terminal's; else COLUMNS when set (40 or more); else PIPE_WIDTH."""
    if sys.stdout.isatty():
        return None  # Rich asks the terminal
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) >= 40 else PIPE_WIDTH


out = Console(width=stdout_width())
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """One clear line on stderr and a non-zero exit (file contents in it shown as plain text)."""
    err.print(f"tokenbench: error: {plain(message)}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    err.print(f"tokenbench: warning: {plain(message)}", markup=False, highlight=False, soft_wrap=True)


def line(text: str) -> None:
    """A plain line on stdout: no markup, no highlighting, no control characters, never folded."""
    out.print(plain(text), markup=False, highlight=False, soft_wrap=True)
