"""Sweeps, the SLO search (a bisection checked step by step by hand), scenarios and SLO presets."""

from __future__ import annotations

import math

import pytest

from bench.serve import sweep
from bench.serve.model import LoadSpec


@pytest.mark.parametrize(
    ("n", "expected"), [(1, [1]), (2, [1, 2]), (8, [1, 2, 4, 8]), (6, [1, 2, 4, 6]), (64, [1, 2, 4, 8, 16, 32, 64])]
)
def test_doublings_end_at_n(n, expected):
    assert sweep.doublings(n) == expected


def test_concurrency_sweep_one_number_is_doublings_a_list_is_itself():
    assert sweep.concurrency_sweep("8") == [1, 2, 4, 8]
    assert sweep.concurrency_sweep("1, 3,10") == [1, 3, 10]


@pytest.mark.parametrize(
    ("text", "integer", "words"),
    [("1,x", True, "'x' is not a number"), ("2,1", False, "must increase"), ("0", True, "positive"),
     ("1,inf", False, "positive finite"), ("1.5", True, "not a number")],
)  # fmt: skip
def test_bad_lists_are_one_line_errors(text, integer, words):
    with pytest.raises(sweep.SweepError, match=words) as e:
        sweep.parse_numbers(text, "--rate-sweep", integer)
    assert "\n" not in str(e.value) and str(e.value).startswith("--rate-sweep")


def test_too_many_points_are_refused():
    with pytest.raises(sweep.SweepError, match="at most 64"):
        sweep.parse_numbers(",".join(str(i) for i in range(1, 66)), "--rate-sweep", integer=False)


def test_sweep_specs_concurrency_points_send_at_rate_inf():
    base = LoadSpec(request_rate=5.0, num_prompts=30, seed=7)
    specs = sweep.sweep_specs(base, "concurrency", [1, 4])
    assert [(s.request_rate, s.max_concurrency, s.num_prompts, s.seed) for s in specs] == [
        (math.inf, 1, 30, 7), (math.inf, 4, 30, 7)]  # fmt: skip
    rates = sweep.sweep_specs(LoadSpec(max_concurrency=8), "rate", [0.5, 2])
    assert [(s.request_rate, s.max_concurrency) for s in rates] == [(0.5, 8), (2.0, 8)]


def test_run_sweep_stops_when_told():
    seen: list[float] = []

    def point(spec: LoadSpec) -> float:
        seen.append(spec.request_rate)
        return spec.request_rate

    got = sweep.run_sweep([LoadSpec(request_rate=r) for r in (1, 2, 3)], point, stopped=lambda: len(seen) >= 2)
    assert got == [1, 2]


def test_rate_search_bisects_as_computed_by_hand():
    # meets below 5.3 req/s. lo 1 (met), hi 16 (missed), then midpoints of (highest met, lowest missed):
    # (1+16)/2 = 8.5 missed; (1+8.5)/2 = 4.75 met; (4.75+8.5)/2 = 6.625 missed; (4.75+6.625)/2 = 5.6875
    # missed; (4.75+5.6875)/2 = 5.21875 met; (5.21875+5.6875)/2 = 5.453125 missed: 8 points, the budget.
    res = sweep.slo_search(lambda x: x <= 5.3, 1, 16, max_points=8)
    assert res.tried == [(1, True), (16, False), (8.5, False), (4.75, True), (6.625, False), (5.6875, False),
                         (5.21875, True), (5.453125, False)]  # fmt: skip
    assert res.best == 5.21875 and res.reason == "8 points tried"


def test_concurrency_search_closes_the_interval():
    # meets at 20 or fewer: 1 met, 64 missed, 32 missed, 16 met, 24 missed, 20 met, 22 missed, 21 missed;
    # then 20 and 21 are neighbours: closed, best 20, with points to spare.
    res = sweep.slo_search(lambda x: x <= 20, 1, 64, max_points=20, integer=True)
    assert [x for x, _ in res.tried] == [1, 64, 32, 16, 24, 20, 22, 21]
    assert res.best == 20 and res.reason == "the interval is closed"


def test_search_ends_at_a_bound():
    high = sweep.slo_search(lambda x: True, 1, 8, max_points=5)
    assert high.tried == [(1, True), (8, True)] and high.best == 8
    low = sweep.slo_search(lambda x: False, 1, 8, max_points=5)
    assert low.tried == [(1, False)] and low.best is None and "low bound" in low.reason


def test_search_stops_when_told_and_refuses_bad_bounds():
    calls: list[float] = []

    def meets(x: float) -> bool:
        calls.append(x)
        return True

    res = sweep.slo_search(meets, 1, 8, max_points=5, stopped=lambda: len(calls) >= 1)
    assert res.tried == [(1, True)] and res.reason == "stopped"
    with pytest.raises(sweep.SweepError, match="0 < low < high"):
        sweep.slo_search(lambda x: True, 4, 2, max_points=5)
    with pytest.raises(sweep.SweepError, match="at least 2"):
        sweep.slo_search(lambda x: True, 1, 2, max_points=1)


def test_scenarios_are_the_standard_lengths():
    for name, (i, o) in {"1k-1k": (1024, 1024), "1k-8k": (1024, 8192), "8k-1k": (8192, 1024)}.items():
        s = sweep.scenario(name)
        assert (s.input_len, s.output_len, s.range_ratio) == (i, o, 0.8) and s.source


@pytest.mark.parametrize(
    ("name", "ttft_s", "tpot_s"),
    [("llama2-70b", 2.0, 0.2), ("llama2-70b-interactive", 0.45, 0.04), ("llama3.1-8b", 2.0, 0.1),
     ("llama3.1-8b-interactive", 0.5, 0.03), ("llama3.1-405b", 6.0, 0.175)],
)  # fmt: skip
def test_slo_presets_are_mlperfs(name, ttft_s, tpot_s):
    slo, source = sweep.slo_preset(name)
    assert slo.ttft_s == pytest.approx(ttft_s) and slo.tpot_s == pytest.approx(tpot_s) and slo.e2el_s is None
    assert "MLPerf Inference" in source


def test_unknown_names_suggest_the_closest():
    with pytest.raises(sweep.SweepError, match=r"unknown SLO preset 'llama2-70'; did you mean 'llama2-70b'\?"):
        sweep.slo_preset("llama2-70")
    with pytest.raises(sweep.SweepError, match="unknown scenario 'zzz'; known: 1k-1k, 1k-8k, 8k-1k"):
        sweep.scenario("zzz")


def test_a_malformed_scenarios_file_is_one_line(tmp_path):
    bad = tmp_path / "s.toml"
    bad.write_text("[scenario.a]\ninput_len = 'many'\noutput_len = 1\nrange_ratio = 0\nsource = 'x'\n")
    with pytest.raises(sweep.SweepError, match="malformed"):
        sweep.scenario("a", bad)
    bad.write_text("[scenario\n")
    with pytest.raises(sweep.SweepError, match="cannot read"):
        sweep.scenario("a", bad)


def _rec(seq, status, met, tps):
    return {"seq": seq, "label": f"p{seq}", "status": status, "slo_met": met, "output_tokens_per_s": tps,
            "slo_attainment": 1.0 if met else 0.5, "slo_target": 0.99}  # fmt: skip


def test_best_point_is_the_fastest_meeting_the_slo():
    records = [_rec(0, "ok", True, 100.0), _rec(1, "ok", True, 300.0), _rec(2, "ok", False, 900.0),
               _rec(3, "failed", True, 1000.0)]  # fmt: skip
    best = sweep.best_point(records)
    assert best is not None and best["seq"] == 1
    assert sweep.headline(records)[0].startswith("best load point meeting the SLO: p1: 300.0 output tok/s")
    missed = sweep.headline([_rec(0, "ok", False, 50.0)])
    assert missed[0] == "no load point met the SLO" and missed[1].startswith("load point: p0: 50.0 output tok/s")
