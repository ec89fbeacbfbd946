"""`tokenbench cost` over the life and at fleet scale, as a user runs it: issue 17's hand-worked examples
in the table and in JSON (within 1e-4 relative), the headline, profiles, plots and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app

# One H100 at $45,800 (the id replaces the packaged server), 1.73 kW provisioned; a bare site.
SERVER = """
[[server]]
id = "hgx-h100-8"
gpu = "H100-SXM"
product = "one H100"
gpus = 1
usd = 45800
network_share = 0
provisioned_kw_per_gpu = 1.73
date = "2026-11"
source = "issue 17's hand-worked example"
"""
SITE = "cost_of_capital = 0.10\nmaintenance_share = 0\ncolo_usd_per_kw_month = 0\npue = 1\nusd_per_kwh = 0\n"


def invoke(*args: str):
    return CliRunner().invoke(app, ["cost", *args])


@pytest.fixture
def bare(tmp_path: Path) -> list[str]:
    (tmp_path / "server.toml").write_text(SERVER)
    (tmp_path / "site.toml").write_text(SITE)
    return ["--gpu", "H100-SXM", "--tokens-per-s", "1000", "--catalog", str(tmp_path / "server.toml"),
            "--site", str(tmp_path / "site.toml")]  # fmt: skip


def run(args: list[str]) -> tuple[str, dict]:
    table, doc = invoke(*args), invoke(*args, "--format", "json")
    assert table.exit_code == 0 and doc.exit_code == 0, table.output + doc.output
    return table.stdout, json.loads(doc.stdout)


def test_life_and_residual_and_a_falling_rent(bare):
    text, doc = run([*bare, "--utilisation", "1", "--life-years", "3", "--residual-share", "0.3",
                     "--usd-per-gpu-hour", "2", "--rent-decline", "0.2"])  # fmt: skip
    owned = doc["gpus"]["H100-SXM"]["owned"]
    assert owned["capital_usd_per_year"] == pytest.approx(14_265.80, rel=1e-4)
    assert owned["capital_usd_per_hour"] == pytest.approx(1.6285, rel=1e-4)
    given = next(o for o in doc["gpus"]["H100-SXM"]["offers"] if o["id"] == "given")
    assert given["rent_pv_usd"] == pytest.approx(35_935.09, rel=1e-4)
    assert given["level_usd_per_gpu_hour"] == pytest.approx(1.6495, rel=1e-4)
    for shown in ("$14,265.80 a year = $1.6285/GPU-hour", "$35,935.09", "$1.6495"):
        assert shown in text, shown
    # owning wins by 2 cents an hour; renting wins once rents fall faster than 21% a year
    decision = doc["gpus"]["H100-SXM"]["decision"]
    assert decision["owning_wins"] and decision["break_even_decline"] == pytest.approx(0.21295, abs=1e-4)
    cheapest, first = text.splitlines()[:2]  # the $/Mtok headline, then the decision
    assert cheapest.startswith("H100-SXM, given rate: cheapest: ")
    assert first.startswith("Decision: H100-SXM: owning is cheaper: owned $1.63 against rented $1.65")
    assert doc["headline"][:2] == text.splitlines()[:2]
    years = doc["gpus"]["H100-SXM"]["years"]
    assert years["offer"] == "given" and years["overtakes_year"] == 3  # your quote is the one compared with
    assert years["rented_pv_usd"] == pytest.approx(35_935.09, rel=1e-4)
    assert "Year by year on H100-SXM" in text and "-$13,740" in text  # the residual back in year 3


def test_reselling_idle_hours(bare):
    text, doc = run([*bare, "--utilisation", "0.6", "--life-years", "3", "--residual-share", "0.3",
                     "--resale-price", "1.5", "--resale-fill", "0.5"])  # fmt: skip
    owned = doc["gpus"]["H100-SXM"]["owned"]
    assert owned["usd_per_useful_hour"] == pytest.approx(2.2142, rel=1e-4)
    assert owned["usd_per_useful_hour_without_resale"] == pytest.approx(2.7142, rel=1e-4)
    assert owned["resale_usd_per_wall_hour"] == pytest.approx(0.30)
    assert "$2.2142" in text and "$2.7142" in text and "resale of idle hours" in text
    assert any(s["parameter"] == "resale_price" for s in doc["gpus"]["H100-SXM"]["sensitivity"])


def test_a_fleet_of_two_gigawatts_and_a_contract(bare, tmp_path):
    (tmp_path / "pue.toml").write_text("pue = 1.3\n")
    args = [*bare, "--site", str(tmp_path / "pue.toml"), "--fleet-mw", "2000", "--usd-per-gpu-hour", "2",
            "--contract-usd", "14.2e9", "--contract-years", "6.25"]  # fmt: skip
    text, doc = run(args)
    fleet = doc["gpus"]["H100-SXM"]["fleet"]
    assert fleet["gpus"] == 889_284 and fleet["it_kw"] == pytest.approx(2_000_000 / 1.3)
    assert fleet["capital_usd"] == pytest.approx(889_284 * 45_800)
    assert "889,284" in text and "Fleet of H100-SXM: 2,000 MW" in text
    assert doc["contract"]["gpus"] == pytest.approx(14.2e9 / 2 / (6.25 * 8760))
    assert "129,680" in text  # GPUs the contract keeps busy every hour of its term
    assert "the fleet's 889,284 GPUs" in text  # the year-by-year table is for the whole fleet


def test_default_output_gains_only_the_headline_and_the_new_columns():
    text, doc = run(["--gpu", "H100-SXM", "--tokens-per-s", "1557", "--usd-per-gpu-hour", "1.30"])
    first = text.splitlines()[1]  # under the $/Mtok headline
    assert first.startswith("Decision: H100-SXM: renting is cheaper: owned $3.68 against rented $1.30")
    assert "It flips with the rent above $3.68/GPU-hour" in first
    assert "profile enterprise (the default)" in text and doc["profile"] == "enterprise"
    assert "Over the life" not in text and "Year by year" not in text  # only with a life option
    assert doc["gpus"]["H100-SXM"]["owned"]["usd_per_useful_hour"] == pytest.approx(3.6776, rel=1e-4)
    # the break-even decline beside the break-even utilisation: rents must rise 59% a year for owning to win
    given = next(o for o in doc["gpus"]["H100-SXM"]["offers"] if o["id"] == "given")
    assert given["break_even"]["decline"] == pytest.approx(-0.59, abs=0.01) and "rise >" in text


def test_profiles_set_the_owners_figures_and_show_the_published_tco():
    text, doc = run(["--gpu", "H100-SXM", "--tokens-per-s", "1557", "--profile", "neocloud"])
    assert doc["profile"] == "neocloud" and doc["site"]["depreciation_years"]["value"] == 6
    assert doc["site"]["maintenance_share"]["value"] == 0.005
    assert "profile neocloud" in text and "published: neocloud" in text
    cal = doc["gpus"]["H100-SXM"]["owned"]["calibration"][0]
    assert cal["published_usd_per_gpu_hour"] == 1.69 and abs(cal["board_difference"]) < 0.15
    # --life-years replaces the profile's life; --site files come after the profile
    doc = json.loads(invoke("--gpu", "H100-SXM", "--tokens-per-s", "1557", "--profile", "hyperscaler",
                            "--life-years", "4", "--format", "json").stdout)  # fmt: skip
    assert doc["gpus"]["H100-SXM"]["owned"]["years"] == 4
    assert doc["gpus"]["H100-SXM"]["owned"]["rate"] == 0.0658


def test_cumulative_plot_is_written(bare, tmp_path):
    out = tmp_path / "plots"
    result = invoke(*bare, "--life-years", "3", "--usd-per-gpu-hour", "2", "--plots", str(out))
    assert result.exit_code == 0, result.output
    assert {"cost-H100-SXM-cumulative.png", "cost-H100-SXM-cumulative.svg"} <= {p.name for p in out.iterdir()}


RATE = ["--gpu", "H100-SXM", "--tokens-per-s", "1000"]


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        ([*RATE, "--life-years", "0"], "--life-years must be in (0, 15] years, got 0"),
        ([*RATE, "--life-years", "16"], "--life-years must be in (0, 15] years, got 16"),
        ([*RATE, "--residual-share", "1"], "--residual-share must be in [0, 1)"),
        ([*RATE, "--residual-share", "-0.1"], "--residual-share must be in [0, 1)"),
        ([*RATE, "--rent-decline", "1"], "--rent-decline must be in (-1, 1)"),
        ([*RATE, "--resale-price", "-1", "--resale-fill", "0.5"], "--resale-price must be a price of 0 or more"),
        ([*RATE, "--resale-price", "1", "--resale-fill", "1.5"], "--resale-fill must be in [0, 1]"),
        ([*RATE, "--resale-price", "1.5"], "--resale-price and --resale-fill go together"),
        ([*RATE, "--resale-fill", "0.5"], "--resale-price and --resale-fill go together"),
        ([*RATE, "--fleet-mw", "0"], "--fleet-mw must be positive"),
        ([*RATE, "--contract-usd", "1e9"], "--contract-usd and --contract-years go together"),
        ([*RATE, "--contract-usd", "1e9", "--contract-years", "3"], "--contract-usd needs --usd-per-gpu-hour"),
        ([*RATE, "--profile", "bank"], "--profile: unknown profile 'bank'; known: enterprise"),
        ([*RATE, "--profile", "neocoud"], "known: enterprise, neocloud, hyperscaler; did you mean 'neocloud'?"),
        (["--gpu", "L40S", "--tokens-per-s", "100", "--fleet-mw", "10"],
         "--fleet-mw: no provisioned kW per GPU for L40S"),
    ],
)  # fmt: skip
def test_bad_life_input_is_one_line_exit_2(args, expect):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert expect in result.output and result.output.count("tokenbench: error") == 1
    assert len(result.output.strip().splitlines()) == 1


def test_a_bad_site_figure_over_the_life_is_one_line(tmp_path):
    (tmp_path / "site.toml").write_text("residual_share = 1.0\n")
    result = invoke(*RATE, "--site", str(tmp_path / "site.toml"))
    assert result.exit_code == 2 and "site.residual_share: 1.0 is outside [0.0, 1.0)" in result.output
