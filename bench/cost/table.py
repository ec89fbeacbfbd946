"""Rich tables for `tokenbench cost` whose every cell is plain text, and that keep every figure at 80 columns.

A label, a provider or a product name comes from a results file or a catalog the user was given: it
may hold terminal escape codes, Rich markup (`[bold]`, `[link=...]`, a stray `[/]`) or bidirectional
overrides. Cells given as strings are shown through `bench.text.plain` as `rich.text.Text`, so no
markup in them is read; a cell that should be styled is passed as a `Text` already.

A table wider than the terminal is laid out narrower, never by cutting a figure: the figure columns
(right-justified) keep their width and never wrap; text columns wrap at spaces, never inside a word
or a header word; and when the figures alone do not fit, they are split over several tables, each
repeating the first column (the row's key).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.style import StyleType
from rich.table import Column, Table
from rich.text import Text

from bench.text import plain

BORDER = 3  # a column's share of padding and rule
WORD_FOLD = 30  # a text cell's word longer than this (a URL) may be folded onto several lines


def _text(value: RenderableType | None) -> RenderableType:
    return value if isinstance(value, Text) else Text(plain(value))


def _plain_of(value: Any) -> str:
    return value.plain if isinstance(value, Text) else str(value)


def _longest_word(values: Iterable[Any]) -> int:
    return max((len(w) for v in values for w in _plain_of(v).split()), default=1)


def _natural(column: Column) -> int:
    return max((max((len(line) for line in _plain_of(v).splitlines()), default=0)
                for v in [column.header, *column._cells]), default=1)  # fmt: skip


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

    def _part(self, columns: list[Column], title: Any) -> Table:
        part = Table(title=title, title_justify=self.title_justify, header_style=self.header_style, box=self.box,
                     show_header=self.show_header, show_lines=self.show_lines)  # fmt: skip
        part.columns = [dataclasses.replace(c, _index=i) for i, c in enumerate(columns)]
        part.rows = list(self.rows)
        return part

    def compact(self, width: int) -> list[Table]:
        """This table laid out for `width` columns: figures whole, text wrapped at spaces, split when needed."""
        cols = []
        for c in self.columns:
            if c.justify == "right":  # a figure: whole, on one line
                cols.append(dataclasses.replace(c, no_wrap=True, min_width=_natural(c)))
            else:  # text: wraps at spaces; only a word longer than WORD_FOLD (a URL) is folded, never the header
                least = max(_longest_word([c.header]), min(WORD_FOLD, _longest_word(c._cells)))
                cols.append(dataclasses.replace(c, overflow="fold", min_width=least))
        need = sum((c.min_width or 1) + BORDER for c in cols) + 1
        if need <= width or len(cols) < 3:
            return [self._part(cols, self.title)]
        key, rest = cols[0], cols[1:]
        parts: list[list[Column]] = [[key]]
        used = (key.min_width or 1) + BORDER + 1
        for c in rest:
            w = (c.min_width or 1) + BORDER
            if len(parts[-1]) > 1 and used + w > width:
                parts.append([key])
                used = (key.min_width or 1) + BORDER + 1
            parts[-1].append(c)
            used += w
        title = _plain_of(self.title or "")
        return [self._part(p, self.title if n == 0 else Text(f"{title}, continued ({n + 1} of {len(parts)})"))
                for n, p in enumerate(parts)]  # fmt: skip

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        natural = Measurement.get(console, options.update(width=10_000), self._part(self.columns, None)).maximum
        if natural <= options.max_width or getattr(self, "_compacting", False):
            yield from super().__rich_console__(console, options)
            return
        yield from self.compact(options.max_width)
