"""Rich tables for `tokenbench cost` whose every cell is plain text.

A label, a provider or a product name comes from a results file or a catalog the user was given: it
may hold terminal escape codes, Rich markup (`[bold]`, `[link=...]`, a stray `[/]`) or bidirectional
overrides. Cells given as strings are shown through `bench.text.plain` as `rich.text.Text`, so no
markup in them is read; a cell that should be styled is passed as a `Text` already.
"""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.style import StyleType
from rich.table import Table
from rich.text import Text

from bench.text import plain


def _text(value: RenderableType | None) -> RenderableType:
    return value if isinstance(value, Text) else Text(plain(value))


class PlainTable(Table):
    """A left-titled table with bold headers whose title, headers and string cells are plain text."""

    def __init__(self, title: str, **kwargs: Any) -> None:
        kwargs.setdefault("title_justify", "left")
        kwargs.setdefault("header_style", "bold")
        super().__init__(title=Text(plain(title)), **kwargs)

    def add_column(self, header: RenderableType = "", *args: Any, **kwargs: Any) -> None:
        super().add_column(_text(header), *args, **kwargs)

    def add_row(
        self, *renderables: RenderableType | None, style: StyleType | None = None, end_section: bool = False
    ) -> None:
        super().add_row(*(_text(c) for c in renderables), style=style, end_section=end_section)
