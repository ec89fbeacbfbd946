"""Cost formulas against hand-computed values."""

from __future__ import annotations

import pytest

from bench.cost import Owned, crf, usd_per_mtok


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
