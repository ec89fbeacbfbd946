"""Owner profiles, the published TCO they are calibrated against, and the dated figures over the life
(bench/catalog/profiles.toml, market.toml): sourced, dated, and the calibration within 15% or explained."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.catalog import market, prices
from bench.catalog.gpus import CatalogError
from bench.catalog.profiles import DEFAULT_PROFILE, load_profiles, profile_names
from bench.cost.scenario import calibration

ROOT = Path(__file__).resolve().parents[2]
DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
PUBLISHED = {  # SemiAnalysis AI Cloud TCO, via InferenceX: $/GPU-hour owned (issue 17)
    ("hyperscaler", "H100-SXM"): 1.30,
    ("neocloud", "H100-SXM"): 1.69,
    ("hyperscaler", "H200-SXM"): 1.41,
    ("neocloud", "H200-SXM"): 1.74,
    ("hyperscaler", "B200"): 1.95,
    ("neocloud", "B200"): 2.34,
}
# Within 15% with energy at the board's TDP everywhere; at the published all-in power, the one case over
# 15% is explained line by line in bench/cost/README.md.
EXPLAINED_ALL_IN = {("hyperscaler", "H100-SXM")}


def test_profiles_exist_and_the_default_is_the_packaged_site():
    assert profile_names() == ["enterprise", "neocloud", "hyperscaler"]
    assert DEFAULT_PROFILE == "enterprise" and load_profiles().profiles["enterprise"].site == {}
    assert prices.load(profile="enterprise").site == prices.packaged().site
    assert prices.packaged().profile == "enterprise"
    with pytest.raises(CatalogError, match="unknown profile 'bank'"):
        prices.load(profile="bank")


def test_every_profile_figure_is_dated_and_sourced_and_weak_ones_say_why():
    for profile in load_profiles().profiles.values():
        assert profile.summary.strip()
        for item in profile.site.values():
            assert DATE.match(item.date) and item.source.strip()
            assert not item.weak or (item.note and item.note.strip())
    hyperscaler = prices.load(profile="hyperscaler")
    # a facility it owns: $11.7M per MW x CRF(6.58%, 15 y) / 12 = $104.23 per kW-month
    assert hyperscaler.value("colo_usd_per_kw_month") == pytest.approx(11_700 * 0.106904 / 12, abs=0.01)
    assert hyperscaler.site["cost_of_capital"].weak  # a bond yield, not a WACC: said so


def test_published_tco_is_in_the_catalog_as_issued():
    published = {(p.owner, p.gpu): p.usd_per_gpu_hour for p in prices.packaged().published_tco}
    assert published == PUBLISHED
    assert {p.all_in_kw for p in prices.packaged().published_tco if p.gpu == "H100-SXM"} == {1.73}


@pytest.mark.parametrize(("owner", "gpu"), sorted(PUBLISHED))
def test_profiles_land_within_15_percent_of_the_published_tco_or_are_explained(owner, gpu):
    (c,) = calibration(prices.load(profile=owner), gpu)
    assert c.published_usd_per_gpu_hour == PUBLISHED[(owner, gpu)]
    assert abs(c.board_difference) <= 0.15, c
    if (owner, gpu) in EXPLAINED_ALL_IN:
        readme = (ROOT / "bench" / "cost" / "README.md").read_text()
        assert 0.15 < abs(c.all_in_difference) < 0.17 and f"{c.all_in_difference:+.1%}" in readme
    else:
        assert abs(c.all_in_difference) <= 0.15, c


def test_hyperscaler_h100_calibration_by_hand():
    (c,) = calibration(prices.load(profile="hyperscaler"), "H100-SXM")
    capital = 296_644 / 8 / 0.81  # 45,778.4
    crf = 0.0658 * 1.0658**6 / (1.0658**6 - 1)  # 0.207069
    fixed = capital * (crf + 0.005) / 8760 + 104.23 * 1.73 * 12 / 8760  # 1.1082 + 0.2470
    assert c.board_usd_per_wall_hour == pytest.approx(fixed + 0.7 * 1.1 * 0.0806, rel=1e-9)  # 1.4174
    assert c.all_in_usd_per_wall_hour == pytest.approx(fixed + 1.73 * 1.1 * 0.0806, rel=1e-9)  # 1.5087
    assert c.board_difference == pytest.approx(1.4174 / 1.30 - 1, abs=1e-3)


def test_market_figures_are_dated_sourced_and_the_issues_figures_are_there():
    figures = {f.id: f for f in market.figures()}
    for f in figures.values():
        assert DATE.match(f.date) and f.source.strip()
        assert not f.weak or (f.note and f.note.strip())
    assert figures["meta-life-2025"].value == 5.5 and figures["meta-life-2025"].date == "2025-01"
    assert figures["amazon-life"].date == "2025-01-01" and figures["burry-life"].date == "2025-11-10"
    assert (figures["h100-rent-2023"].value, figures["h100-rent-2024"].value) == (8, 2)
    assert (figures["h100-rent-index-2025-10"].value, figures["h100-rent-index-2026-03"].value) == (1.70, 2.35)
    assert all(figures[i].weak for i in ("h100-residual-12m", "h100-residual-24m", "h100-residual-36m"))
    assert figures["coreweave-meta-2031"].value == 14.2 and figures["meta-compute"].date == "2026-07-01"
    assert figures["h100-residual-36m"].value_text() == "25-35%"
    assert figures["meta-gpus-2025"].value_text() == "1,300,000 GPUs"
    assert figures["h100-rent-index-2025-10"].value_text() == "$1.70/GPU-hour"


def test_the_sensitivity_ranges_rest_on_the_dated_figures():
    s, f = prices.packaged().sensitivity, market.by_id
    assert s.depreciation_years == (f("burry-life").value, f("microsoft-life").value)  # 2 to 6 years
    assert s.residual_share == (0.0, f("h100-residual-36m").high)
    assert s.rent_decline == (-0.38, -f("h200-rent-2025-ytd").value)  # +38% in five months; the H200's 2025 fall
    low, high = f("h100-rent-index-2025-10").value, f("h100-rent-index-2026-03").value
    assert s.resale_price == (round(low / high, 2), round(high / low, 2))  # 0.72, 1.38
    assert s.maintenance_share == (0.005, 0.20)  # a one-off 3% over 6 years; a DGX support contract


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "site.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("residual_share = 1\n", r"site.residual_share: 1.0 is outside \[0.0, 1.0\)"),
        ("rent_decline = -1\n", r"site.rent_decline: -1.0 is outside \(-1.0, 1.0\)"),
        ("resale_fill = 2\n", r"site.resale_fill: 2.0 is outside \[0.0, 1.0\]"),
        ("[sensitivity]\nresidual_share = [0.5, 0.2]\n", r"residual_share: expected low <= high"),
        ("[sensitivity]\nrent_decline = [-0.5, 1.0]\n", r"rent_decline: \[-0.5, 1.0\] goes outside"),
        ("[sensitivity]\nresale_price = [0, 1]\n", r"resale_price: expected 0 < low <= high"),
    ],
)
def test_bad_figures_over_the_life_are_one_line_errors(tmp_path, text, expect):
    with pytest.raises(CatalogError) as e:
        prices.load(site_files=[write(tmp_path, text)])
    assert "\n" not in str(e.value) and re.search(expect, str(e.value)), str(e.value)


def test_a_site_file_sets_the_figures_over_the_life(tmp_path):
    cat = prices.load(site_files=[write(tmp_path, "residual_share = 0.2\nrent_decline = 0.1\nusd_per_kwh = 0\n")])
    assert (cat.optional("residual_share"), cat.optional("rent_decline"), cat.value("usd_per_kwh")) == (0.2, 0.1, 0)
    assert prices.packaged().optional("residual_share") == 0.0  # absent: no resale value
