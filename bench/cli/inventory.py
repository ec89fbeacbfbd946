"""`tokenbench list` and `tokenbench env`: what can run, and the environment a run records."""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from bench.cli.console import out
from bench.text import plain


class ListFormat(str, Enum):
    table = "table"
    json = "json"


def list_(
    fmt: Annotated[ListFormat, typer.Option("--format", help="table, or json (for scripts)")] = ListFormat.table,
) -> None:
    """List the workloads (with default parameters) and the built-in suites."""
    import workloads
    from bench.measure.suites import SuiteError, builtin_names, load_suite

    found: list[dict[str, Any]] = []
    for name in builtin_names():
        try:
            s = load_suite(name)
            found.append({"name": name, "entries": len(s.entries), "description": s.description, "error": None})
        except SuiteError as e:
            found.append({"name": name, "entries": None, "description": None, "error": str(e)})
    if fmt is ListFormat.json:
        listing = {
            "workloads": [{"id": w.id, "version": w.version, "family": w.family, "description": w.description,
                           "parameters": {k: f.default for k, f in w.Params.model_fields.items()}}
                          for w in workloads.REGISTRY.values()],
            "suites": found,
        }  # fmt: skip
        sys.stdout.write(json.dumps(listing, indent=2, default=str) + "\n")
        return
    wt = Table(title="workloads", title_justify="left", header_style="bold")
    for col in ("id", "version", "family", "parameters (defaults)", "description"):
        wt.add_column(col, overflow="fold")
    for w in workloads.REGISTRY.values():
        wt.add_row(w.id, str(w.version), w.family, _params_text(w), w.description)
    st = Table(title="suites", title_justify="left", header_style="bold")
    for col in ("suite", "entries", "description"):
        st.add_column(col, overflow="fold")
    for suite in found:
        if suite["error"] is None:
            st.add_row(suite["name"], str(suite["entries"]), suite["description"])
        else:
            st.add_row(suite["name"], "-", Text(f"invalid: {plain(suite['error'])}", style="red"))
    out.print(wt)
    out.print(st)


def env_(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or cuda:N")] = None,
) -> None:
    """Show the environment a run records: versions, host, device and its state as found."""
    from bench.cli.run import _open_device
    from bench.measure import provenance as envmod

    dev = _open_device(device)
    info: dict[str, Any] = envmod.capture(dev)
    if as_json:
        out.print_json(json.dumps(info, default=str))
        return
    table = Table(show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in info.items():
        table.add_row(key, "-" if value is None else str(value))
    out.print(table)


def _params_text(workload: Any) -> str:
    fields = workload.Params.model_fields
    return ", ".join(f"{name}={field.default!r}" for name, field in fields.items())
