"""`tokenbench cost` as a user runs it: the issue's example, measured records on a hand-worked site,
every output format, plots, and bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path
from xml.etree import ElementTree

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.cli import app


def invoke(*args: str):
    return CliRunner().invoke(app, ["cost", *args])


def test_issue_example_prices_a_given_rate():
    result = invoke("--gpu", "H100-SXM", "--tokens-per-s", "1557", "--usd-per-gpu-hour", "1.30", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(io.StringIO(result.stdout))
    given = rows[rows.scenario == "given"].iloc[0]
    assert given.usd_per_mtok == pytest.approx(0.2319, abs=5e-5)  # 1.30 / (1557 x 3600 / 1e6)
    assert given.power_from.startswith("estimate: TDP 700 W")  # nothing measured: labelled
    assert {"owned", "aws-p5-on-demand", "lambda-h100-8x-on-demand"} <= set(rows.scenario)


def test_table_shows_every_assumption():
    result = invoke("--gpu", "H100-SXM", "--tokens-per-s", "1557", "--usd-per-gpu-hour", "1.30")
    assert result.exit_code == 0, result.output
    text = result.stdout
    for needle in ("Site assumptions", "CBRE", "EIA", "CRF(", "colocation", "$0.2319", "Sensitivity",
                   "break-even", "~ marks a power figure estimated from the TDP"):  # fmt: skip
        assert needle in text, needle


# A hand-worked site: capital 80,000 / 8 / (1 - 0.2) = 12,500 per GPU, straight line over 5 years,
# maintenance 10%, 1 kW at $100/kW-month, PUE 1.5, $0.10/kWh, utilisation 50%.
SERVER = """
[[server]]
id = "hgx-h100-8"
gpu = "H100-SXM"
product = "test box"
gpus = 8
usd = 80000
network_share = 0.2
provisioned_kw_per_gpu = 1.0
date = "2026-11"
source = "a quote"

[[offer]]
id = "acme-od"
gpu = "H100-SXM"
provider = "Acme"
product = "8x H100"
term = "on-demand"
usd_per_gpu_hour = 2.00
date = "2026-11"
source = "a quote"
"""
SITE = """
depreciation_years = 5
cost_of_capital = 0
maintenance_share = 0.10
colo_usd_per_kw_month = 100
pue = 1.5
usd_per_kwh = 0.10
utilisation = 0.5
"""


def rec(seq: int, **kw) -> dict:
    base = {"schema_version": 1, "run_id": "r1", "seq": seq, "status": "ok", "device_name": "NVIDIA H100 80GB HBM3",
            "power_mean_w": 600.0, "idle_power_w": 100.0}  # fmt: skip
    return {**base, **kw}


@pytest.fixture
def measured(tmp_path: Path) -> tuple[Path, Path, Path]:
    records = [
        rec(0, workload="decode", label="decode 8b b32", tokens_per_s=1000.0, output_tokens_per_s=1000.0,
            per_user_tokens_per_s=40.0, param_batch=32, param_prompt_len=512, param_new_tokens=128),
        rec(1, workload="train", label="train tiny", tokens_per_s=1000.0, mfu=0.4, compute_dtype="bf16"),
        rec(2, workload="gemm", label="gemm", tokens_per_s=None),
        rec(3, workload="train", label="train on cpu", tokens_per_s=50.0, device_name="Intel Xeon",
            power_mean_w=None),
        rec(4, workload="train", status="failed", label="oom", tokens_per_s=None),
    ]  # fmt: skip
    results = tmp_path / "results"
    results.mkdir()
    (results / "r1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    catalog, site = tmp_path / "mine.toml", tmp_path / "site.toml"
    catalog.write_text(SERVER)
    site.write_text(SITE)
    return results, catalog, site


def test_measured_records_on_a_hand_worked_site(measured):
    results, catalog, site = measured
    result = invoke(str(results), "--catalog", str(catalog), "--site", str(site), "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(io.StringIO(result.stdout))
    assert set(rows.seq) == {0, 1}  # the kernel, the CPU and the failed record are not priced

    def cell(seq: int, kind: str, scenario: str) -> pd.Series:
        return rows[(rows.seq == seq) & (rows.tokens == kind) & (rows.scenario == scenario)].iloc[0]

    # owned per useful hour: (0.565068 fixed + 0.6 kW x 0.5 x 0.15 + 0.1 kW x 0.5 x 0.15) / 0.5 = 1.235137
    owned = cell(0, "output", "owned")
    assert owned.usd_per_useful_gpu_hour == pytest.approx(1.235137, abs=1e-6)
    assert owned.usd_per_mtok == pytest.approx(1.235137 / 3.6, abs=1e-6)  # 1000 output tokens/s
    assert cell(0, "total", "owned").usd_per_mtok == pytest.approx(1.235137 / 18, abs=1e-6)  # 5000/s
    assert cell(0, "input", "owned").per_user_tokens_per_s == 40.0
    acme = cell(0, "output", "acme-od")
    assert acme.usd_per_mtok == pytest.approx(2.0 / 3.6)
    assert acme.break_even_utilisation == pytest.approx(0.301334, abs=1e-6)  # 0.580068 / 1.925
    assert acme.payback_months == pytest.approx(12_500 / ((2.0 * 0.5 - 0.33218) * 730), rel=1e-4)
    assert cell(1, "trained", "owned").usd_per_mtok == pytest.approx(1.235137 / 3.6, abs=1e-6)
    assert set(rows.power_from) == {"measured"}


def test_table_names_records_not_priced_and_projects_training_from_measured_mfu(measured):
    results, catalog, site = measured
    args = [str(results), "--catalog", str(catalog), "--site", str(site)]
    result = invoke(*args, "--train-params", "1e9", "--train-tokens", "1e12", "--train-gpus", "8")
    assert result.exit_code == 0, result.output
    assert "not priced: 1 record: a kernel benchmark (no tokens to price)" in result.stdout
    assert "not priced: 1 record: status failed" in result.stdout
    assert "not a catalog GPU" in result.stdout
    assert "per useful GPU-hour, amortised at 50%" in result.stdout  # the projection says how it is priced
    doc = json.loads(invoke(*args, "--format", "json", "--train-params", "1e9", "--train-tokens", "1e12",
                            "--train-gpus", "8").stdout)  # fmt: skip
    p = doc["gpus"]["H100-SXM"]["projection"]
    # 6 x 1e9 x 1e12 / (0.4 x 989e12) / 3600 = 4213.05 GPU-hours
    assert p["gpu_hours"] == pytest.approx(6e21 / (0.4 * 989e12) / 3600)
    assert p["mfu_from"].startswith("measured: train tiny")
    assert p["usd"]["acme-od"] == pytest.approx(p["gpu_hours"] * 2.0)
    assert p["usd"]["owned"] == pytest.approx(p["gpu_hours"] * 1.235137, rel=1e-6)
    owned = doc["gpus"]["H100-SXM"]["owned"]
    assert owned["capital_usd"] == pytest.approx(12_500)
    assert doc["site"]["pue"]["value"] == 1.5 and doc["site"]["pue"]["source"].startswith("your site file")
    assert len(doc["not_priced"]) == 3


def test_plots_are_written_as_png_and_svg(measured, tmp_path):
    results, catalog, site = measured
    out = tmp_path / "plots"
    result = invoke(str(results), "--catalog", str(catalog), "--site", str(site), "--plots", str(out))
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    kinds = ("cumulative", "tornado", "utilisation")
    assert names == [f"cost-H100-SXM-{k}.{x}" for k in kinds for x in ("png", "svg")]
    for p in out.glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for p in out.glob("*.svg"):
        assert ElementTree.parse(p).getroot().tag.endswith("svg")


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        ([], "nothing to price"),
        (["--gpu", "H999", "--tokens-per-s", "10"], "--gpu: unknown GPU 'H999'"),
        (["--tokens-per-s", "10"], "--tokens-per-s needs --gpu"),
        (["--gpu", "H100-SXM", "--tokens-per-s", "0"], "--tokens-per-s must be positive"),
        (["--gpu", "H100-SXM", "--tokens-per-s", "10", "--train-params", "8e9"], "go together"),
        (["--gpu", "H100-SXM", "--tokens-per-s", "10", "--train-params", "8e9", "--train-tokens", "1e12"],
         "--train-gpus is needed"),
        (["results-that-do-not-exist"], "no such file or directory"),
        (["--catalog", "nope.toml", "--gpu", "H100-SXM", "--tokens-per-s", "10"], "nope.toml: cannot read"),
        (["--usd-per-gpu-hour", "2"], "--usd-per-gpu-hour needs --gpu"),
        (["--gpu", "H100-SXM", "--tokens-per-s", "10", "--mfu", "0.4"], "--mfu go with --train-params"),
        (["--gpu", "H100-SXM", "--tokens-per-s", "10", "--term", "3-year"], "--term goes with --usd-per-gpu-hour"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2(args, expect):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert expect in result.output and result.output.count("tokenbench: error") == 1


def test_results_with_nothing_priceable_say_why(measured):
    results, _, _ = measured
    (results / "r1.jsonl").write_text(json.dumps(rec(0, workload="train", tokens_per_s=9.0, device_name="cpu")) + "\n")
    result = invoke(str(results))
    assert result.exit_code == 2
    assert result.output == (
        "tokenbench: error: nothing to price: 1 record skipped: 1 on a device that is not a catalog GPU "
        "(no catalog entry matches 'cpu')\n"
    )


def test_rate_mode_projection_needs_an_mfu():
    args = ["--gpu", "H100-SXM", "--tokens-per-s", "1557", "--train-params", "8e9", "--train-tokens", "15e12",
            "--train-gpus", "1024"]  # fmt: skip
    result = invoke(*args)  # the projection asked for cannot be made: a one-line error, not a warning
    assert result.exit_code == 2 and "no training record with an MFU; pass --mfu" in result.output
    assert result.output.count("\n") == 1
    doc = json.loads(invoke(*args, "--mfu", "0.38", "--format", "json").stdout)
    assert doc["gpus"]["H100-SXM"]["projection"]["days"] == pytest.approx(21.654, rel=1e-4)


@pytest.mark.parametrize(("option", "path"), [("--catalog", "/dev/zero"), ("--site", "/dev/urandom")])
def test_a_catalog_or_site_that_is_no_regular_file_is_refused_unread(option, path):
    result = CliRunner().invoke(app, ["cost", "--gpu", "H100-SXM", "--tokens-per-s", "1500", option, path])
    assert result.exit_code == 2
    assert result.output == f"tokenbench: error: {path}: cannot read: a character device, not a regular file\n"
