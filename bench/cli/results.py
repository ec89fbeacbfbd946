"""What `tokenbench report` and `tokenbench compare` share: reading results and the catalog, never measuring."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bench.cli.console import fail, warn

if TYPE_CHECKING:  # pandas comes with the reader: imported when a command runs, not for --help
    from bench.catalog.prices import Catalog
    from bench.results.reader import Run

ResultsArg = Annotated[
    list[Path],
    typer.Argument(metavar="RESULTS", help="results: .jsonl files, run headers or directories (searched recursively)"),
]
CatalogOpt = Annotated[
    list[Path] | None,
    typer.Option("--catalog", metavar="FILE", help="your [[gpu]], [[offer]], [[server]] file (as for cost)"),
]
SiteOpt = Annotated[list[Path] | None, typer.Option("--site", metavar="FILE", help="your site figures (as for cost)")]


def _runs(paths: list[Path], what: str = "results") -> list[Run]:
    from bench.results.reader import ResultsError, read_runs

    try:
        runs = read_runs(*paths, on_warning=warn)
    except ResultsError as e:
        fail(str(e))
    if not any(run.records for run in runs):
        fail(f"no records found in {what} {', '.join(map(str, paths))}")
    return runs


def _catalog(catalog: list[Path] | None, site: list[Path] | None) -> Catalog:
    from bench.catalog import prices

    try:
        return prices.load(catalog or [], site or [])
    except prices.CatalogError as e:
        fail(str(e))
