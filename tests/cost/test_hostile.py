"""`tokenbench cost` with hostile strings and unbounded numbers: labels, providers and products are plain
text in every output, CSV cells cannot run as formulas, every number is finite or refused in one line."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.catalog import prices
from bench.cli import app, console
from bench.cost import export
from bench.cost.model import crf, payback_months

HOSTILE = "\x1b[31m[bold]x[/]\u202e"
FORMULAS = ['=HYPERLINK("http://evil","y")', "=1+1", "@SUM(A1:A9)", "-2+3", "\x1b[31mred\x07\u202e"]
CATALOG = f"""
[[offer]]
id = "hostile-offer"
gpu = "H100-SXM"
provider = {json.dumps(HOSTILE)}
product = "[link=http://evil]p[/link] [/]"
term = "on-demand"
usd_per_gpu_hour = 2.00
date = "2025-11"
source = {json.dumps("[bold]src " + HOSTILE)}
"""


def invoke(*args: str):
    return CliRunner().invoke(app, ["cost", *args])


def write_records(tmp_path: Path, labels: list[str]) -> Path:
    base = {"schema_version": 1, "run_id": "r1", "status": "ok", "device_name": "NVIDIA H100 80GB HBM3",
            "power_mean_w": 600.0, "idle_power_w": 100.0, "workload": "train", "tokens_per_s": 1000.0}  # fmt: skip
    path = tmp_path / "r1.jsonl"
    path.write_text("".join(json.dumps({**base, "seq": i, "label": s}) + "\n" for i, s in enumerate(labels)))
    return path


def test_csv_defuses_formulas_and_control_characters(tmp_path):
    result = invoke(str(write_records(tmp_path, FORMULAS)), "--format", "csv")
    assert result.exit_code == 0, result.output
    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in result.stdout
    labels = set(pd.read_csv(io.StringIO(result.stdout)).label)
    assert labels == {"'" + FORMULAS[0], "'=1+1", "'@SUM(A1:A9)", "'-2+3", "\\x1b[31mred\\x07\\u202e"}


def test_table_shows_markup_and_escapes_from_records_and_catalog_as_plain_text(tmp_path, monkeypatch):
    monkeypatch.setattr(console.out, "width", 1000)  # no cell folded
    catalog = tmp_path / "mine.toml"
    catalog.write_text(CATALOG)
    records = write_records(tmp_path, ["[/]", HOSTILE])
    result = invoke(str(records), "--catalog", str(catalog))
    assert result.exit_code == 0, result.output  # a "[/]" crashed Rich's markup parser
    text = result.stdout
    for raw in ("\x1b", "\u202e"):
        assert raw not in text
    for shown in ("\\x1b[31m[bold]x[/]\\u202e", "[link=http://evil]p[/link] [/]", "#0 [/]", "[bold]src"):
        assert shown in text, shown


def test_tiny_cost_of_capital_is_straight_line():
    assert crf(1e-17, 5) == pytest.approx(0.2, rel=1e-12)
    assert crf(1e-300, 6) == pytest.approx(1 / 6, rel=1e-12)
    assert crf(0.08, 5) == pytest.approx(0.08 * 1.08**5 / (1.08**5 - 1), rel=1e-12)
    assert payback_months(1000.0, 10.0, 1e-17) == pytest.approx(100.0, rel=1e-9)


def test_tiny_cost_of_capital_prices_and_a_tiny_life_is_refused(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text("cost_of_capital = 1e-17\n")
    ok = invoke("--gpu", "H100-SXM", "--tokens-per-s", "1557", "--site", str(site), "--rent-decline", "0.1")
    assert ok.exit_code == 0, ok.output
    site.write_text("depreciation_years = 1e-300\n")
    bad = invoke("--gpu", "H100-SXM", "--tokens-per-s", "1557", "--site", str(site))
    assert bad.exit_code == 2, bad.output
    assert bad.stderr.count("\n") == 1 and "depreciation_years" in bad.stderr


@pytest.mark.parametrize("flag", ["--usd-per-gpu-hour", "--tokens-per-s", "--power-w", "--train-params"])
@pytest.mark.parametrize("value", ["inf", "nan"])
def test_every_float_option_must_be_finite(flag, value):
    args = ["--gpu", "H100-SXM", "--tokens-per-s", "1557", flag, value]
    if flag == "--train-params":
        args += ["--train-tokens", "1e12", "--train-gpus", "8", "--mfu", "0.4"]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "finite" in result.stderr, result.stderr


def test_json_never_writes_nan_or_infinity(monkeypatch):
    result = invoke("--gpu", "H100-SXM", "--tokens-per-s", "1557", "--format", "json")
    assert result.exit_code == 0, result.output
    monkeypatch.setattr(export, "as_json", lambda report: {"a": math.inf, "b": [math.nan, -math.inf], "c": 1.5})
    text = export.json_text(None)  # type: ignore[arg-type]
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"not JSON: {c}")) == {
        "a": None,
        "b": [None, None],
        "c": 1.5,
    }


def test_future_dated_catalog_entries_are_named_in_a_warning(tmp_path):
    catalog = tmp_path / "mine.toml"
    catalog.write_text(CATALOG.replace('date = "2025-11"', 'date = "2999-01"'))
    result = invoke("--gpu", "H100-SXM", "--tokens-per-s", "1557", "--catalog", str(catalog))
    assert result.exit_code == 0, result.output
    warnings = [s for s in result.stderr.splitlines() if "warning" in s]
    assert len(warnings) == 1 and "'hostile-offer'" in warnings[0] and "2999-01" in warnings[0]
    assert prices.future_dated(prices.load([], [], None)) == []  # nothing packaged is dated after today
