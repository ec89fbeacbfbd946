"""The report's columns, and the marks a shown figure gets when its record says it is not to be trusted.

Three marks, each with its legend line under the table that shows it:
- `!` after the CV: the samples' CV is above the suite's threshold (`unstable`), so the median is not trustworthy.
- `~` after the median: the host was busy while the record ran (`contended`, with `contention_reason`), which
  inflates every call evenly, so the CV does not see it.
- `^` after a serve load point's throughput: the load generator's own work (its event loop or CPU), not the
  server, limited the rate (`client_limited`, with `client_limited_reason`). A load generator starved by other
  processes on its host is `contended` (`~`) instead: the host was busy, not the client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.text import number
from bench.text import plural as count

# The host-state fields (bench/results/host_fields.py) and the serve client's self-check (serve_fields.py).
CONTENDED, CONTENTION_REASON = "contended", "contention_reason"
CLIENT_LIMITED, CLIENT_LIMITED_REASON = "client_limited", "client_limited_reason"
NOISY_MARK, CONTENDED_MARK, CLIENT_MARK = "!", "~", "^"


@dataclass(frozen=True)
class Col:
    """A column of a family table: the row's key, its header, how a value is shown, whether it is a number, and
    the mark a row's shown value gets ("" for none)."""

    key: str
    header: str
    fmt: Callable[[Any], str] = number
    numeric: bool = True
    mark: Callable[[dict[str, Any]], str] | None = None

    def show(self, row: dict[str, Any]) -> str:
        """The row's value as shown, with its mark when it has a value."""
        text = self.fmt(row.get(self.key))
        return text + self.mark(row) if self.mark is not None and text != "-" else text


def _ok(record: dict[str, Any]) -> bool:
    return record.get("status") == "ok"


def is_noisy(record: dict[str, Any]) -> bool:
    return bool(record.get("unstable")) and _ok(record)


def is_contended(record: dict[str, Any]) -> bool:
    return bool(record.get(CONTENDED)) and _ok(record)


def is_client_limited(record: dict[str, Any]) -> bool:
    return bool(record.get(CLIENT_LIMITED)) and _ok(record)


def noisy(record: dict[str, Any]) -> str:
    return NOISY_MARK if is_noisy(record) else ""


def contended(record: dict[str, Any]) -> str:
    return CONTENDED_MARK if is_contended(record) else ""


def client_limited(record: dict[str, Any]) -> str:
    return CLIENT_MARK if is_client_limited(record) else ""


def marks_of(record: dict[str, Any]) -> str:
    """Every mark of a record, in one string ("" when it has none): for a headline's best figure."""
    return noisy(record) + contended(record) + client_limited(record)


def _reasons(records: list[dict[str, Any]], key: str) -> str:
    found = sorted({str(r[key]) for r in records if r.get(key)})
    if not found:
        return ""
    shown = "; ".join(found[:3]) + (f"; and {len(found) - 3} more" if len(found) > 3 else "")
    return f" ({shown})"


def _named_reasons(records: list[dict[str, Any]], key: str) -> str:
    """Each record's reason with the record it belongs to, at most three ("gemm 512x512x512 fp32: ...")."""
    found = [f"{r.get('workload', '?')} {r.get('label', '')}".strip() + f": {r[key]}" for r in records if r.get(key)]
    if not found:
        return ""
    return " (" + "; ".join(found[:3]) + (f"; and {len(found) - 3} more" if len(found) > 3 else "") + ")"


def legend(records: list[dict[str, Any]]) -> list[str]:
    """One line per mark that these records carry: what it means and how many records have it."""
    lines = []
    noisy_ = [r for r in records if is_noisy(r)]
    if noisy_:
        lines.append(f"{NOISY_MARK} CV above the suite's threshold, or fewer samples than its minimum "
                     f"({count(len(noisy_), 'record')}): the median is not trustworthy; rerun on a quiet "
                     "machine")  # fmt: skip
    busy = [r for r in records if is_contended(r)]
    if busy:
        lines.append(f"{CONTENDED_MARK} contended: the host was busy while {count(len(busy), 'record')} ran, which "
                     "slows every call alike (the CV does not show it): distrust those figures"
                     + _named_reasons(busy, CONTENTION_REASON))  # fmt: skip
    client = [r for r in records if is_client_limited(r)]
    if client:
        lines.append(f"{CLIENT_MARK} client-limited: the load generator's own work (event loop or CPU) limited "
                     f"{count(len(client), 'load point')}: the server may serve more; spread the load over more "
                     "client processes" + _reasons(client, CLIENT_LIMITED_REASON))  # fmt: skip
    return lines
