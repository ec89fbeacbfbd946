"""The test that `pytest --tokenbench-suite SUITE` collects: one case per suite entry (see pytest_plugin)."""

from __future__ import annotations

from typing import Any


def test_suite_entry(tokenbench: Any, tokenbench_entry: str) -> None:
    tokenbench.suite_entry(tokenbench_entry)
