"""Over the hardware's life and at fleet scale: residual value, a falling rent, resold idle hours, fleets,
contracts; every figure against a hand-worked value (issue 17's examples among them)."""

from __future__ import annotations

import pytest

from bench.cost import life
from bench.cost.fleet import contract, fleet, gpus_for_facility
from bench.cost.model import Owned, break_even, cheaper_where, crf

# Issue 17's site: cost of capital 10%, no maintenance, colocation or energy, PUE 1; one H100 at $45,800.
BARE = {
    "capital_usd": 45_800.0,
    "years": 3,
    "rate": 0.10,
    "maintenance_share": 0.0,
    "colo_usd_per_kw_month": 0.0,
    "provisioned_kw": 1.73,
    "pue": 1.0,
    "usd_per_kwh": 0.0,
    "active_kw": 0.7,
    "idle_kw": 0.7,
}


def test_capital_recovery_nets_off_the_residual_value_by_hand():
    o = Owned(**BARE, residual_share=0.30)
    assert crf(0.10, 3) == pytest.approx(0.402115, abs=1e-6)
    # (45,800 - 13,740 / 1.331) x 0.402115 = 35,476.93 x 0.402115 = 14,265.80 a year
    assert o.residual_usd() == pytest.approx(13_740)
    assert o.capital_usd_per_year() == pytest.approx(14_265.80, abs=0.01)
    assert o.capital_usd_per_hour() == pytest.approx(1.6285, rel=1e-4)  # / 8760
    assert Owned(**BARE).capital_usd_per_hour() == pytest.approx(45_800 * 0.402115 / 8760, rel=1e-6)
    # straight line at r = 0: (P - S) / n
    assert Owned(**{**BARE, "rate": 0.0}, residual_share=0.3).capital_usd_per_year() == pytest.approx(32_060 / 3)


def test_falling_rent_present_value_and_level_price_by_hand():
    # $2.00 x 8760 = 17,520 in year 1, then 14,016 and 11,212.80:
    # 17,520 / 1.1 + 14,016 / 1.21 + 11,212.80 / 1.331 = 15,927.27 + 11,583.47 + 8,424.34 = 35,935.09
    assert life.rent_present_value(2.00 * 8760, 0.20, 0.10, 3) == pytest.approx(35_935.09, abs=0.01)
    # level: 35,935.09 x CRF 0.402115 / 8760 = 1.6495 per GPU-hour
    assert 2.00 * life.level_factor(0.20, 0.10, 3) == pytest.approx(1.6495, rel=1e-4)
    assert life.level_factor(0.0, 0.10, 3) == 1.0  # flat rents: the level is the price
    assert life.level_factor(-0.10, 0.10, 3) > 1.0  # rising rents: dearer than today's price
    with pytest.raises(ValueError, match="below 100%"):
        life.rent_path(1.0, 3)


def test_a_part_year_is_weighted_by_its_fraction():
    assert list(life.year_weights(5.5)) == [1, 1, 1, 1, 1, 0.5]
    assert list(life.year_weights(3)) == [1, 1, 1]
    assert life.level_factor(0.0, 0.10, 5.5) == pytest.approx(1.0)
    # 1 year then half a year, r = 0, d = 50%: (1 + 0.5 x 0.5) / (1 + 0.5) = 0.8333
    assert life.level_factor(0.5, 0.0, 1.5) == pytest.approx(1.25 / 1.5)


def test_break_even_decline_is_where_the_level_rent_meets_owning():
    owned = 1.628516  # the owned $ per GPU-hour of the example above, against $2.00 falling
    d = life.break_even_decline(owned / 2.00, 0.10, 3)
    assert d == pytest.approx(0.21295, abs=1e-4)  # owning wins while rents fall slower than 21.3% a year
    assert 2.00 * life.level_factor(d, 0.10, 3) == pytest.approx(owned, rel=1e-9)
    rise = life.break_even_decline(1.5, 0.10, 3)  # owning costs 1.5x today's rent: only a rise flips it
    assert rise is not None and rise < 0 and life.level_factor(rise, 0.10, 3) == pytest.approx(1.5)
    # the year-1 rent alone, discounted, is 1.1^-1 / (1.1^-1 + 1.1^-2 + 1.1^-3) = 0.3656 of the level:
    assert life.break_even_decline(0.3, 0.10, 3) is None  # owning wins even if rents vanish after year 1
    assert life.break_even_decline(0.5, 0.10, 1) is None  # a one-year life has no later rents


def test_year_by_year_schedule_and_the_year_owning_overtakes_by_hand():
    s = life.schedule(45_800, 13_740, 0.0, 17_520, 0.20, 0.10, 3)
    assert [r.owned_usd for r in s.rows] == pytest.approx([45_800, 0, 0, -13_740])
    assert [r.rented_usd for r in s.rows] == pytest.approx([0, 17_520, 14_016, 11_212.8])
    assert s.rows[-1].rented_cumulative_usd == pytest.approx(42_748.8)
    assert s.owned_pv_usd == pytest.approx(45_800 - 13_740 / 1.331)  # 35,476.93
    assert s.rented_pv_usd == pytest.approx(35_935.09, abs=0.01)
    assert (s.overtakes_year, s.overtakes_year_cash) == (3, 3)  # the residual comes back in year 3
    never = life.schedule(45_800, 0.0, 0.0, 8_760, 0.0, 0.10, 3)
    assert (never.overtakes_year, never.overtakes_year_cash) == (None, None)


RESALE = {**BARE, "residual_share": 0.30}


def test_reselling_idle_hours_by_hand():
    o = Owned(**RESALE, resale_usd_per_gpu_hour=1.50, resale_fill=0.5)
    # 40% idle x 50% fill = 20% of hours resold at $1.50: $0.30 per wall hour
    assert o.resold_share(0.6) == pytest.approx(0.2)
    assert o.resale_usd_per_wall_hour(0.6) == pytest.approx(0.30)
    assert o.usd_per_useful_hour(0.6) == pytest.approx(2.2142, rel=1e-4)  # (1.628516 - 0.30) / 0.6
    assert o.usd_per_wall_hour(0.6) / 0.6 == pytest.approx(2.7142, rel=1e-4)  # without resale
    # resold hours draw the active power: 0.2 x (0.7 - 0.1) kW x PUE 1.5 x $0.10 = $0.018 per wall hour
    powered = Owned(**{**RESALE, "pue": 1.5, "usd_per_kwh": 0.10, "idle_kw": 0.1}, resale_usd_per_gpu_hour=1.5,
                    resale_fill=0.5)  # fmt: skip
    assert powered.resale_energy_usd_per_wall_hour(0.6) == pytest.approx(0.018)
    assert powered.net_usd_per_wall_hour(0.6) == pytest.approx(powered.usd_per_wall_hour(0.6) + 0.018 - 0.30)


def test_break_even_utilisation_counts_the_resale_margin_by_hand():
    o = Owned(**RESALE, resale_usd_per_gpu_hour=1.50, resale_fill=0.5)
    # g = 0.5 x 1.50 = 0.75 per idle hour; a = F - g = 0.878516, b = g = 0.75
    # on demand at $2: a + b u < 2 u  ->  u* = 0.878516 / 1.25 = 0.70281
    assert o.break_even_utilisation(2.00) == pytest.approx(0.878516 / 1.25, rel=1e-5)
    be = break_even(o, 2.00, committed=False, utilisation=0.6)
    assert be.verdict == "owning cheaper above 70%" and not be.owning_cheaper_at_site
    assert o.usd_per_useful_hour(be.utilisation) == pytest.approx(2.00)
    # committed at $1.20: 0.878516 + 0.75 u < 1.20 below u = 0.42865 (idle hours earn more than they cost)
    committed = break_even(o, 1.20, committed=True, utilisation=0.6)
    assert committed.verdict == "owning cheaper below 43%"
    assert committed.utilisation == pytest.approx((1.20 - 0.878516) / 0.75, rel=1e-5)


def test_where_a_line_is_negative_on_the_unit_interval():
    assert cheaper_where(-1.0, 0.5) == ("any", None)
    assert cheaper_where(1.0, 0.5) == ("never", None)
    assert cheaper_where(1.0, -2.0) == ("above", 0.5)
    assert cheaper_where(-1.0, 2.0) == ("below", 0.5)


def test_fleet_of_two_gigawatts_by_hand():
    # 2,000 MW / 1.3 = 1,538,461.5 kW of IT power / 1.73 kW per GPU = 889,284.1 -> 889,284 GPUs
    assert gpus_for_facility(2000, 1.3, 1.73) == 889_284
    f = fleet(2000, 1.3, 1.73, 45_800, 1.628516, 2.0, 1000.0, 0.5)
    assert f.gpus == 889_284 and f.capital_usd == pytest.approx(889_284 * 45_800)
    assert f.owned_usd_per_year == pytest.approx(889_284 * 1.628516 * 8760)
    assert f.rented_usd_per_year == pytest.approx(889_284 * 0.5 * 8760 * 2.0)  # the same useful hours
    assert f.tokens_per_year == pytest.approx(889_284 * 1000 * 0.5 * 3600 * 8760)
    assert f.usd_per_mtok_owned == pytest.approx(1.628516 / 0.5 / 3.6)
    assert f.tokens_per_s_per_provisioned_mw == pytest.approx(1000 / 1.73 * 1000)  # 578,035
    with pytest.raises(ValueError, match="provisioned kW"):
        gpus_for_facility(100, 1.3, 0)


def test_contract_buys_gpu_hours_and_gpus_by_hand():
    # $14.2B at $2.00/GPU-hour = 7.1e9 GPU-hours; over 6.25 years x 8760 h = 129,680 GPUs
    c = contract(14.2e9, 6.25, 2.00)
    assert c.gpu_hours == pytest.approx(7.1e9)
    assert c.gpus == pytest.approx(7.1e9 / (6.25 * 8760))
    with pytest.raises(ValueError):
        contract(1e9, 0, 2.0)
