"""Text for report, compare and cost: numbers as people read them, and cells made safe to show.

Numbers: one formatter per meaning; every one shows a missing value (None) as "-" unless its
name says otherwise. Cells: every string in a results file may come from someone else's
machine: a hostname or a label can hold terminal escape codes, Rich markup, Markdown links or
HTML. Cells are made plain text here (control and bidirectional-override characters shown as
escapes) and then escaped for the format (terminal, Markdown, CSV).
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass, field

from rich.table import Table
from rich.text import Text

VERDICT_STYLES = {
    "PASS": "green",
    "WARN": "yellow",
    "FAIL": "bold red",
    "MISSING": "bold red",
    "NEW": "cyan",
    "SKIP": "yellow",
}
_MD_PUNCTUATION = "\\`*_[]|#$~"
CELL_LIMIT = 200  # a results file can hold a megabyte in one string: cells show its start

# --- numbers ------------------------------------------------------------------------------------


def offer_name(provider: str, term: str) -> str:
    """Provider and term, the term once: "Lambda on-demand", "InferenceX 3-year rental"."""
    return provider if term in provider else f"{provider} {term}"


def plural(n: int, word: str, words: str | None = None) -> str:
    """'1 record', '2 records', '1,200 entries': `words` where the plural is not word + s."""
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def _missing(value: float | None) -> bool:
    return value is None or not math.isfinite(value)


def duration(seconds: float | None) -> str:
    """Seconds in the unit (s, ms, us, ns) that keeps 4 significant digits readable: "1.8 ms"."""
    if _missing(seconds):
        return "-"
    assert seconds is not None
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.4g} {unit}"
    return f"{seconds / 1e-9:.4g} ns"


def number(value: float | None, digits: int = 4) -> str:
    """A measured figure to `digits` significant digits: "610.8"; one too large for them whole, with
    thousands separators ("127,960", never "1.2796e+05"); "-" for None, NaN or infinity."""
    if _missing(value):
        return "-"
    assert value is not None
    return f"{value:,.0f}" if abs(value) >= 10**digits else f"{value:.{digits}g}"


def integer(value: float | None) -> str:
    """A count or a size with thousands separators: "1,073,741,824"."""
    return "-" if value is None else f"{value:,}"


def percent(fraction: float | None) -> str:
    """A fraction as a percentage to one decimal: 0.1234 -> "12.3%"."""
    return "-" if fraction is None else f"{100 * fraction:.1f}%"


def percent_or_na(fraction: float | None) -> str:
    """percent(), but "n/a" for None: the results table's fractions of a peak the catalog may not know."""
    return "n/a" if fraction is None else f"{100 * fraction:.1f}%"


def whole_percent(fraction: float | None) -> str:
    """A fraction as a whole percentage: 0.6 -> "60%" (utilisation, MFU in the cost tables)."""
    return "-" if fraction is None else f"{100 * fraction:.0f}%"


def signed_percent(change: float | None) -> str:
    """A relative change with its sign: 0.052 -> "+5.2%" (+ is slower where it is a time)."""
    return "-" if change is None else f"{100 * change:+.1f}%"


def percent_interval(low: float | None, high: float | None) -> str:
    """An interval of relative changes in percent, signed: "[+1.0, +3.5]"."""
    return "-" if low is None or high is None else f"[{100 * low:+.1f}, {100 * high:+.1f}]"


def usd(value: float | None, digits: int = 2) -> str:
    """Dollars with thousands separators and `digits` decimals: "$1,234.50"."""
    return "-" if _missing(value) else f"${value:,.{digits}f}"


def usd_compact(value: float | None) -> str:
    """Dollars in a narrow column: 3 significant digits under $10 ("$0.232"), cents above ("$12.40")."""
    if value is None:
        return "-"
    return f"${value:.3g}" if value < 10 else f"${value:,.2f}"


def token_rate(per_s: float | None) -> str:
    """A token rate: whole numbers with thousands separators from 100 up ("1,557"), 3 significant digits below."""
    if _missing(per_s):
        return "-"
    assert per_s is not None
    return f"{per_s:,.0f}" if per_s >= 100 else f"{per_s:.3g}"


def headline_figure(value: float) -> str:
    """A headline figure in a sentence: whole with separators from 1,000 up ("1,557"), 4 significant digits below."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


# --- cells --------------------------------------------------------------------------------------


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
        """A row, each cell made plain text and cut to CELL_LIMIT."""
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.title}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([cell(c) for c in cells])

    def rich(self) -> Table:
        """The grid as a Rich table for the terminal (cells as Text, so no markup in them is read)."""
        table = Table(title=Text(plain(self.title)), title_justify="left", header_style="bold")
        for name in self.columns:
            table.add_column(Text(name), justify="right" if name in self.right else "left", overflow="fold")
        vcol = self.columns.index(self.verdict_column) if self.verdict_column in self.columns else -1
        for row in self.rows:
            table.add_row(*(Text(c, style=VERDICT_STYLES.get(c, "") if i == vcol else "") for i, c in enumerate(row)))
        return table

    def markdown(self) -> str:
        """The grid as a Markdown section: a heading and a pipe table, every cell escaped."""
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
