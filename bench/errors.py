"""Validation errors as the one line a user reads."""

from __future__ import annotations

from pydantic import ValidationError


def first_error(e: ValidationError, default_loc: str = "value", show_input: bool = False) -> str:
    """`field.path: message` of the first error, plus `(+N more)`; never more than one line."""
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"] if p != "[key]")
    shown = show_input and loc and "input" in err and err["type"] != "missing"  # a missing field's input is its parent
    got = f" (got {_short(repr(err['input']))})" if shown else ""
    more = f" (+{e.error_count() - 1} more)" if e.error_count() > 1 else ""
    return " ".join(f"{loc or default_loc}: {err['msg']}{got}{more}".split())


def _short(text: str, limit: int = 60) -> str:
    """An echoed input stays short: a results file can hold a megabyte in one field."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
