"""Dated figures over the hardware's life and at fleet scale: book lives, rent history, residual values.

They are the evidence behind the ranges in site.toml's [sensitivity] (life, rent decline, residual
share, resale price) and the owner profiles, and `tokenbench cost` prints them beside its life and
fleet tables. Data in market.toml; each figure dated and sourced, weak ones with a note.
"""

from __future__ import annotations

import functools
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from bench.catalog.sourced import Sourced, fail, read_toml
from bench.errors import first_error

LABEL = "bench/catalog/market.toml"
Topic = Literal["book life", "rent", "residual value", "financing", "fleet", "contract"]


class Figure(Sourced):
    """One dated figure: a value (or a low-high range) in a unit, about one topic."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    topic: Topic
    what: str = Field(min_length=1)
    value: float | None = None  # None: a fact with no number (e.g. a plan announced)
    high: float | None = None  # the top of a range whose bottom is `value`
    unit: str = ""

    @model_validator(mode="after")
    def _range(self) -> Figure:
        if self.high is not None and (self.value is None or self.high < self.value):
            raise ValueError("high needs a value below it")
        return self

    def value_text(self) -> str:
        """The value with its unit: "5.5 years", "60-65% of the price", "$2.35/GPU-hour"."""
        if self.value is None:
            return "-"
        if self.unit == "share":
            low = f"{100 * self.value:g}"
            return f"{low}-{100 * self.high:g}%" if self.high is not None else f"{low}%"
        cents = self.unit == "$/GPU-hour" and self.value != int(self.value)
        span = _num(self.value, cents) + (f"-{_num(self.high, cents)}" if self.high is not None else "")
        return f"${span}{self.unit[1:]}" if self.unit.startswith("$") else f"{span} {self.unit}".strip()


def _num(value: float, cents: bool = False) -> str:
    """1,300,000; 5.5; 1.70 (a price to the cent)."""
    if cents:
        return f"{value:,.2f}"
    return f"{value:,.0f}" if value == int(value) else f"{value:,g}"


@functools.lru_cache(maxsize=1)
def figures() -> tuple[Figure, ...]:
    """Every packaged market figure, in file order (parsed once)."""
    out: list[Figure] = []
    seen: set[str] = set()
    for i, entry in enumerate(read_toml(None, LABEL, "market.toml").get("figure", [])):
        try:
            item = Figure.model_validate(entry)
        except ValidationError as e:
            raise fail(LABEL, f"figure[{i}]: {first_error(e, 'entry', show_input=True)}") from None
        if item.id in seen:
            raise fail(LABEL, f"figure[{i}] ({item.id}): id: duplicate id")
        seen.add(item.id)
        out.append(item)
    return tuple(out)


def by_id(figure_id: str) -> Figure:
    """One packaged figure by id (a KeyError names a figure the catalog lacks)."""
    return {f.id: f for f in figures()}[figure_id]
