"""Cost formulas against hand-computed values."""

from __future__ import annotations

import pytest

from bench.catalog import prices
from bench.cost.model import (
    Owned,
    break_even,
    crf,
    payback_months,
    rented_usd_per_useful_hour,
    usd_per_mtok,
)
from bench.cost.pricing import analyse, given_offer, project_training
from bench.cost.subjects import Subject, power_for, subjects_from_records, token_bases


def test_usd_per_mtok_issue_example():
    # $1.30 per GPU-hour at 1,557 tokens/s: 1.30 / (1557 x 3600 / 1e6) = 1.30 / 5.6052
    assert usd_per_mtok(1.30, 1557) == pytest.approx(0.2319, abs=5e-5)


def test_crf_by_hand_and_straight_line():
    # 8% over 5 years: 0.08 x 1.08^5 / (1.08^5 - 1) = 0.08 x 1.469328 / 0.469328 = 0.250456
    assert crf(0.08, 5) == pytest.approx(0.250456, rel=1e-5)
    assert crf(0.0, 4) == 0.25
    with pytest.raises(ValueError, match="positive"):
        crf(0.05, 0)


def site(**kw) -> Owned:
    base = {
        "capital_usd": 8760.0 * 4,
        "years": 4,
        "rate": 0.0,
        "maintenance_share": 0.0,
        "colo_usd_per_kw_month": 0.0,
        "provisioned_kw": 1.0,
        "pue": 1.5,
        "usd_per_kwh": 0.10,
        "active_kw": 0.7,
        "idle_kw": 0.1,
    }
    return Owned(**{**base, **kw})


def test_owned_hourly_cost_by_hand():
    o = site(maintenance_share=0.1, colo_usd_per_kw_month=146.0)
    # capital: 35040 x (1/4 + 0.1) / 8760 = 1.40; colo: 146 x 1 x 12 / 8760 = 0.20
    assert o.fixed_usd_per_hour() == pytest.approx(1.60)
    # energy at u = 0.5: (0.7 x 0.5 + 0.1 x 0.5) x 1.5 x 0.10 = 0.06
    assert o.usd_per_wall_hour(0.5) == pytest.approx(1.66)
    assert o.usd_per_useful_hour(0.5) == pytest.approx(3.32)
    with pytest.raises(ValueError, match="utilisation"):
        o.usd_per_useful_hour(0)


def test_break_even_utilisation_by_hand():
    o = site()  # fixed 1.00 $/h; energy active 0.105, idle 0.015 $/h
    # u* = (1.00 + 0.015) / (2.00 + 0.015 - 0.105) = 1.015 / 1.91
    u = o.break_even_utilisation(2.00)
    assert u == pytest.approx(1.015 / 1.91)
    assert o.usd_per_useful_hour(u) == pytest.approx(2.00)  # owning costs the rent exactly there
    assert o.break_even_utilisation(0.50) is None  # renting is cheaper even at full use


# --- more formulas, by hand ----------------------------------------------------------------------


def test_energy_cost_counts_pue_and_idle_hours():
    o = site(pue=1.5, usd_per_kwh=0.10, active_kw=0.6, idle_kw=0.1)
    # 0.6 kW x 1.5 x 0.10 = 0.09 $/h working; 0.1 kW x 1.5 x 0.10 = 0.015 $/h idle
    assert o.energy_usd_per_wall_hour(1.0) == pytest.approx(0.09)
    assert o.energy_usd_per_wall_hour(0.25) == pytest.approx(0.09 * 0.25 + 0.015 * 0.75)


def test_committed_rent_is_paid_every_hour_on_demand_only_when_used():
    assert rented_usd_per_useful_hour(2.0, committed=False, utilisation=0.5) == 2.0
    assert rented_usd_per_useful_hour(2.0, committed=True, utilisation=0.5) == 4.0


# The hand-worked site of the CLI test below: capital per GPU 80,000 / 8 / (1 - 0.2) = 12,500;
# straight line over 5 years; maintenance 10%; 1 kW at $100/kW-month; PUE 1.5; $0.10/kWh;
# measured 600 W working, 100 W idle.
HAND = {
    "capital_usd": 12_500.0,
    "years": 5,
    "rate": 0.0,
    "maintenance_share": 0.10,
    "colo_usd_per_kw_month": 100.0,
    "provisioned_kw": 1.0,
    "pue": 1.5,
    "usd_per_kwh": 0.10,
    "active_kw": 0.6,
    "idle_kw": 0.1,
}
FIXED = 12_500 / 5 / 8760 + 1_250 / 8760 + 100 * 12 / 8760  # 0.285388 + 0.142694 + 0.136986 = 0.565068
USEFUL_AT_HALF = (FIXED + 0.09 * 0.5 + 0.015 * 0.5) / 0.5  # 1.235137


def test_break_even_and_payback_on_demand_by_hand():
    o = Owned(**HAND)
    assert o.fixed_usd_per_hour() == pytest.approx(0.565068, abs=1e-6)
    assert o.usd_per_useful_hour(0.5) == pytest.approx(1.235137, abs=1e-6)
    be = break_even(o, 2.00, committed=False, utilisation=0.5)
    # u* = (F + E_idle) / (R + E_idle - E_active) = 0.580068 / 1.925 = 0.301334
    assert be.utilisation == pytest.approx(0.301334, abs=1e-6)
    assert be.verdict == "owning cheaper above 30%"
    assert be.owning_cheaper_at_site
    # rent 2.00 x 730 x 0.5 = 730 a month; operating (0.142694 + 0.136986 + 0.0525) x 730 = 242.49
    assert be.payback_months == pytest.approx(12_500 / (730 - 0.33218 * 730), rel=1e-4)  # 25.64


def test_break_even_against_a_committed_price_by_hand():
    o = Owned(**HAND)  # owned per wall hour: 0.580068 at u -> 0, 0.655068 at u = 1
    assert break_even(o, 1.00, committed=True, utilisation=0.5).verdict == "owning cheaper at any utilisation"
    assert break_even(o, 0.50, committed=True, utilisation=0.5).verdict == "renting cheaper at any utilisation"
    be = break_even(o, 0.62, committed=True, utilisation=0.5)
    # energy tips it: 0.5800685 + 0.075 u < 0.62 below u = 0.0399315 / 0.075 = 0.53242
    assert be.utilisation == pytest.approx(0.53242, abs=1e-5)
    assert be.verdict == "owning cheaper below 53%"
    assert be.owning_cheaper_at_site  # at u = 0.5: 0.5800685 + 0.0375 = 0.6176 < 0.62


def test_payback_is_discounted_at_the_cost_of_capital():
    assert payback_months(12_500, 500, 0.0) == pytest.approx(25.0)
    # r_m = 1.1025^(1/12) - 1 = 0.0081648; n = -ln(1 - 0.0081648 x 12500 / 500) / ln(1.0081648) = 28.08
    assert payback_months(12_500, 500, 0.1025) == pytest.approx(28.08, abs=0.01)
    assert payback_months(12_500, 100, 0.1025) is None  # 102 $/month of interest eats a 100 $/month saving
    assert payback_months(12_500, -5, 0.0) is None


def test_training_projection_by_hand():
    cat = prices.packaged()
    power = power_for(cat.gpus["H100-SXM"], 500.0, 100.0)
    p = project_training(cat, "H100-SXM", power, 8e9, 15e12, 1024, 0.38, "given", offers=[])
    # 6 x 8e9 x 15e12 = 7.2e23 FLOPs; / (0.38 x 989e12) / 3600 = 532,170 GPU-hours; / 1024 / 24 = 21.65 days
    assert p.flops == pytest.approx(7.2e23)
    assert p.gpu_hours == pytest.approx(7.2e23 / (0.38 * 989e12) / 3600)
    assert p.gpu_hours == pytest.approx(532_170, rel=1e-5)
    assert p.days == pytest.approx(21.654, rel=1e-4)
    assert p.energy_mwh == pytest.approx(p.gpu_hours * 0.5 * cat.value("pue") / 1000)
    with pytest.raises(ValueError, match="MFU"):
        project_training(cat, "H100-SXM", power, 8e9, 15e12, 8, 1.5, "given")


# --- what gets priced ----------------------------------------------------------------------------


def test_token_kinds_per_workload():
    decode = {"workload": "decode", "tokens_per_s": 1000.0, "output_tokens_per_s": 1000.0,
              "param_prompt_len": 512, "param_new_tokens": 128}  # fmt: skip
    # the same calls read 512 prompt tokens for every 128 they write: input 4000/s, total 5000/s
    assert token_bases(decode) == [("output", 1000.0), ("input", 4000.0), ("total", 5000.0)]
    assert token_bases({"workload": "train", "tokens_per_s": 900.0}) == [("trained", 900.0)]
    assert token_bases({"workload": "prefill", "tokens_per_s": 5e4}) == [("input", 5e4)]
    assert token_bases({"workload": "gemm", "tokens_per_s": None}) == []
    assert token_bases({"workload": "attention", "tokens_per_s": 1e6}) == []  # query positions: not priced
    assert token_bases({"workload": "train", "tokens_per_s": float("nan")}) == []


def record(**kw) -> dict:
    base = {"run_id": "r1", "seq": 0, "workload": "train", "label": "tiny", "status": "ok",
            "device_name": "NVIDIA H100 80GB HBM3", "tokens_per_s": 1000.0, "power_mean_w": 600.0,
            "idle_power_w": 100.0}  # fmt: skip
    return {**base, **kw}


def test_records_not_priced_say_why():
    cat = prices.packaged()
    subjects, skipped = subjects_from_records(
        [
            record(),
            record(seq=1, status="failed"),
            record(seq=2, workload="gemm", tokens_per_s=None),
            record(seq=3, device_name="Intel Xeon (cpu)"),
            record(seq=4, device_name="NVIDIA H100 80GB HBM3 MIG 1g.10gb"),
            record(seq=5, device_name="NVIDIA A100-SXM4-40GB"),
        ],
        cat,
    )
    report = analyse(cat, subjects, skipped)
    assert [s.seq for s in report.subjects] == [0]  # the A100 40GB has neither a server price nor an offer
    assert "no owned server price and no rental offer for A100-SXM4-40GB" in report.skipped[-1]["reason"]
    assert {r["seq"] for r in report.rows} == {0}
    subjects = subjects[:1]
    assert [s.seq for s in subjects] == [0]
    assert subjects[0].gpu == "H100-SXM" and subjects[0].power.active_w == 600.0
    reasons = {s["seq"]: s["reason"] for s in skipped}
    assert "status failed" in reasons[1]
    assert "a kernel benchmark" in reasons[2]
    assert "no catalog entry" in reasons[3]
    assert "MIG slice" in reasons[4]


def test_power_is_measured_or_a_labelled_tdp_estimate():
    spec = prices.packaged().gpus["H100-SXM"]
    measured = power_for(spec, 612.0, 95.0)
    assert (measured.active_w, measured.idle_w, measured.estimated) == (612.0, 95.0, False)
    guessed = power_for(spec, None, None)
    assert guessed.active_w == 700.0 and guessed.active_from.startswith("estimate: TDP 700 W")
    assert guessed.idle_w == 700.0 and guessed.idle_from.startswith("estimate")


def test_issue_example_through_the_analysis():
    cat = prices.packaged()
    spec = cat.gpus["H100-SXM"]
    subject = Subject(gpu="H100-SXM", label="given", bases=(("tokens", 1557.0),), power=power_for(spec, None, None))
    report = analyse(cat, [subject], [], [given_offer("H100-SXM", 1.30)])
    given = next(r for r in report.rows if r["scenario"] == "given")
    assert given["usd_per_mtok"] == pytest.approx(0.2319, abs=5e-5)
    gc = report.gpus["H100-SXM"]
    assert gc.reference is not None and gc.reference.id == "given"  # the cheapest per useful hour
    ratio = {s.parameter: (s.ratio_low, s.ratio_high) for s in gc.sensitivity}
    base = gc.owned.usd_per_useful_hour(cat.value("utilisation")) / 1.30
    # the rental price multiplies only the rent: owned / (0.75 x rent) and owned / (1.25 x rent)
    assert ratio["rental_price"] == pytest.approx((base / 0.75, base / 1.25))
    # PUE and power prices move only the small energy term; the capital moves much more
    assert abs(ratio["pue"][1] - ratio["pue"][0]) < abs(ratio["capital"][1] - ratio["capital"][0])
