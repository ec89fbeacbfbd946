"""Tables of text for report and compare, rendered safely to the terminal, Markdown and CSV.

Every string in a results file may come from someone else's machine: a hostname or a label can
hold terminal escape codes, Rich markup, Markdown links or HTML. Cells are made plain text here
(control and bidirectional-override characters shown as escapes) and then escaped for the format.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from rich.table import Table
from rich.text import Text

VERDICT_STYLES = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red", "MISSING": "bold red", "NEW": "cyan"}
_MD_PUNCTUATION = "\\`*_[]|#$~"
CELL_LIMIT = 200  # a results file can hold a megabyte in one string: cells show its start


def plain(value: object) -> str:
    """One line of printable text: control and format characters (ESC, BEL, U+202E ...) as \\x.. escapes."""
    text = "" if value is None else str(value)
    out = []
    for ch in text:
        if ch in "\n\r\t":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def cell(value: object, limit: int = CELL_LIMIT) -> str:
    """plain() cut to `limit` characters, with "…" where it was cut."""
    text = plain(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def markdown_cell(value: object) -> str:
    """A cell that Markdown shows as the same text: no links, no emphasis, no HTML, no column breaks."""
    text = plain(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "".join("\\" + ch if ch in _MD_PUNCTUATION else ch for ch in text)


@dataclass
class Grid:
    """A titled table of display strings; `right` marks the numeric columns."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    right: set[str] = field(default_factory=set)
    verdict_column: str | None = None  # coloured PASS / WARN / FAIL in the terminal

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.title}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([cell(c) for c in cells])

    def rich(self) -> Table:
        table = Table(title=Text(plain(self.title)), title_justify="left", header_style="bold")
        for name in self.columns:
            table.add_column(Text(name), justify="right" if name in self.right else "left", overflow="fold")
        vcol = self.columns.index(self.verdict_column) if self.verdict_column in self.columns else -1
        for row in self.rows:
            table.add_row(*(Text(c, style=VERDICT_STYLES.get(c, "") if i == vcol else "") for i, c in enumerate(row)))
        return table

    def markdown(self) -> str:
        align = ["---:" if c in self.right else ":---" for c in self.columns]
        lines = [f"### {markdown_cell(self.title)}", ""]
        lines.append("| " + " | ".join(markdown_cell(c) for c in self.columns) + " |")
        lines.append("| " + " | ".join(align) + " |")
        lines += ["| " + " | ".join(markdown_cell(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"


def csv_safe(value: object) -> object:
    """A string that a spreadsheet would run as a formula (=, +, -, @ first) gets a leading quote."""
    if isinstance(value, str):
        text = plain(value)
        return "'" + text if text[:1] in ("=", "+", "-", "@") else text
    return value
