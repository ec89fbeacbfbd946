"""Serve records from hand-built statistics: every figure by hand, the schema, the README, energy windows."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from bench.device import telemetry as tm
from bench.results import schema
from bench.results.serve_fields import SERVE_BOOL, SERVE_DICT, SERVE_FIELDS, SERVE_INT, SERVE_STR
from bench.serve import records as rec
from bench.serve import window as win
from bench.serve.model import Distribution, LoadPointStats, LoadSpec, RequestResult, Slo

README = Path(__file__).resolve().parents[2] / "bench" / "serve" / "README.md"


def dist(median: float, mean: float | None = None, **pct: float) -> Distribution:
    percentiles = {float(k[1:]): v for k, v in pct.items()}
    return Distribution(n=4, mean=mean if mean is not None else median, median=median, std=0.01,
                        percentiles=percentiles)  # fmt: skip


def stats(completed: int = 9, failed: int = 1, good: int | None = 8, spec: LoadSpec | None = None) -> LoadPointStats:
    return LoadPointStats(
        spec=spec or LoadSpec(request_rate=math.inf, max_concurrency=4, num_prompts=completed + failed, seed=3),
        duration_s=2.0, completed=completed, failed=failed, input_tokens=900, output_tokens=400,
        output_tokens_source="usage", request_throughput=completed / 2.0, output_throughput=200.0,
        total_token_throughput=650.0, max_concurrent_requests=4,
        ttft=dist(0.1, p90=0.2, p95=0.25, p99=0.3), tpot=dist(0.02, p90=0.03, p99=0.04), itl=dist(0.019, p99=0.05),
        e2el=dist(1.0, p90=1.5, p99=2.0), queue=dist(0.0, p99=0.1),
        slo=Slo(ttft_s=0.5, tpot_s=0.05) if good is not None else None, good_requests=good,
        goodput=good / 2.0 if good is not None else None, client_lag_max_s=0.002, client_lag_p99_s=0.001,
        client_cpu_s=0.3,
    )  # fmt: skip


def ctx(**kw) -> rec.PointContext:
    base = dict(run_id="run-1", seq=2, seed=3, dataset="random", input_len=1024, output_len=128, range_ratio=0.0,
                endpoint="/v1/completions", server_model="m", num_gpus=2, host={"hostname": "h", "device": "cpu",
                "device_kind": "cpu", "device_name": "CPU", "tokenbench_version": "0"})  # fmt: skip
    return rec.PointContext(**{**base, **kw})


def results() -> list[RequestResult]:
    a = RequestResult(0, 0.0, 0.5, ok=True, ttft_s=0.1, e2el_s=1.2, output_tokens=10)
    b = RequestResult(1, 0.0, 0.1, ok=True, ttft_s=0.1, e2el_s=0.8, output_tokens=10)
    c = RequestResult(2, 0.0, 0.2, ok=False, error="HTTP 500: boom", http_status=500)
    return [a, b, c]


ENERGY = {"telemetry_source": "nvml", "energy_j": 80.0, "energy_source": "nvml_energy_counter", "energy_reason": None,
          "energy_window_s": 2.0, "power_mean_w": 40.0, "energy_gpus": 2}  # fmt: skip


def test_the_record_by_hand():
    r = rec.point_record(stats(), results(), ctx(), started_at="2026-01-01T00:00:00Z", energy=ENERGY)
    assert r["workload"] == r["family"] == "serve" and r["label"] == "conc 4, 1024/128 random"
    assert (r["param_request_rate"], r["param_max_concurrency"], r["param_num_prompts"]) == (None, 4, 10)
    assert r["failure_rate"] == pytest.approx(0.1) and r["status"] == "failed"  # 10% > the default 5%
    assert "1 of 10 requests failed (10.0% > --max-failure-rate 5.0%)" in r["reason"]
    assert r["output_tokens_per_s"] == r["output_throughput"] == 200.0
    assert r["per_user_tokens_per_s"] == pytest.approx(50.0)  # 1 / 0.02 s
    assert r["output_tokens_per_s_per_gpu"] == pytest.approx(100.0)  # 200 / 2 GPUs
    assert (r["ttft_median_s"], r["ttft_p90_s"], r["ttft_p99_s"], r["e2el_p99_s"]) == (0.1, 0.2, 0.3, 2.0)
    assert r["itl_p90_s"] is None and r["latency_percentiles_s"] == {"ttft_p95": 0.25}
    assert r["slo_attainment"] == pytest.approx(0.8) and r["slo_met"] is False  # 8 / (9 + 1) < 0.99
    assert (r["slo_ttft_s"], r["slo_tpot_s"], r["slo_e2el_s"], r["goodput"]) == (0.5, 0.05, None, 4.0)
    assert r["energy_per_token_j"] == pytest.approx(0.2)  # 80 J / 400 output tokens
    assert r["tokens_per_s_per_w"] == pytest.approx(5.0)  # 400 / 80 J
    assert r["samples_s"] == [0.8, 1.2] and r["n_samples"] == 2  # completed only, in send order
    assert r["time_median_s"] == pytest.approx(1.0)


def test_the_record_is_valid_and_every_key_documented():
    r = rec.point_record(stats(), results(), ctx(extra={"sweep": "concurrency", "num_warmups": 2}),
                         started_at="2026-01-01T00:00:00Z", energy=win.null_energy("no NVML"))  # fmt: skip
    r = json.loads(json.dumps(r))
    assert schema.check_record(r) is None
    extra = set(SERVE_DICT)  # typed as objects once the schema knows SERVE_DICT
    assert [k for k in r if not schema.documented(k) and k not in extra] == []
    assert r["energy_j"] is None and r["energy_reason"] == "no NVML" and r["energy_per_token_j"] is None


@pytest.mark.parametrize(
    ("completed", "failed", "interrupted", "status", "words"),
    [(10, 0, False, "ok", None), (20, 1, False, "ok", None), (0, 3, False, "failed", "no request completed"),
     (5, 1, True, "failed", "interrupted by the user after 5 of 6")],
)  # fmt: skip
def test_verdicts(completed, failed, interrupted, status, words):
    got, reason = rec.verdict(stats(completed, failed), 0.05, interrupted)
    assert got == status and (reason is None if words is None else words in (reason or ""))


def test_no_slo_leaves_the_verdict_null_and_labels_say_the_load():
    r = rec.point_record(stats(good=None, spec=LoadSpec(request_rate=5.0, num_prompts=10)), [], ctx(dataset="sharegpt",
                         input_len=None), started_at="x", energy={})  # fmt: skip
    assert r["slo_met"] is None and r["slo_attainment"] is None and r["good_requests"] is None
    assert r["label"] == "rate 5/s, ?/128 sharegpt" and r["param_request_rate"] == 5.0
    assert r["samples_s"] == [] and r["time_median_s"] is None


def test_every_serve_field_is_in_the_readme_and_typed_once():
    text = README.read_text(encoding="utf-8")
    missing = [k for k in [*SERVE_FIELDS, *SERVE_DICT] if f"`{k}`" not in text]
    assert missing == []
    typed = [*SERVE_INT, *SERVE_BOOL, *SERVE_STR]
    assert len(typed) == len(set(typed)) and set(typed) <= set(SERVE_FIELDS)
    reused = set(SERVE_FIELDS) & set(schema.CORE_FIELDS)
    assert reused == set()  # fields the schema had are reused, not redefined


def test_the_requests_sidecar(tmp_path):
    log = rec.RequestsLog(tmp_path, "run-1")
    for r in results():
        log.append(4, r)
    log.close()
    lines = [json.loads(x) for x in (tmp_path / "run-1.requests.jsonl").read_text().splitlines()]
    assert [(x["seq"], x["index"], x["ok"]) for x in lines] == [(4, 0, True), (4, 1, True), (4, 2, False)]
    assert lines[2]["error"] == "HTTP 500: boom" and lines[2]["http_status"] == 500
    keys = "seq index scheduled_s sent_s ttft_s e2el_s chunk_times_s input_tokens output_tokens output_tokens_source"
    assert set(lines[0]) == {*keys.split(), "input_tokens_source", "http_status", "ok", "error"}


def window(t0, t1, c0, c1, power=None) -> tm.Window:
    samples = [tm.Sample(t0 - 0.01, power_w=power), tm.Sample(t1 + 0.01, power_w=power)] if power else []
    return tm.Window(t0, t1, samples, c0, c1, None, "nvml", None, "instant", 0.02)


def test_energy_sums_over_gpus():
    # GPU 0: counter 100 -> 150 J over 2 s; GPU 1: 200 -> 260 J over 2.5 s; total 110 J over the longest window.
    got = win.sum_windows([window(0, 2, 100.0, 150.0), window(0, 2.5, 200.0, 260.0)], "unused")
    assert got["energy_j"] == pytest.approx(110.0) and got["energy_window_s"] == 2.5
    assert got["power_mean_w"] == pytest.approx(44.0) and got["energy_gpus"] == 2
    assert got["energy_source"] == "nvml_energy_counter"
    # no counter on GPU 1, power 30 W throughout: 60 J integrated over 2 s
    mixed = win.sum_windows([window(0, 2, 100.0, 150.0), window(0, 2, None, None, power=30.0)], "unused")
    assert mixed["energy_j"] == pytest.approx(110.0)
    assert mixed["energy_source"] == "nvml_energy_counter+nvml_power_integrated"


def test_a_gpu_without_a_figure_makes_the_sum_null_with_why():
    got = win.sum_windows([window(0, 2, 100.0, 150.0), window(0, 2, 5.0, 5.0)], "unused")
    assert got["energy_j"] is None and got["energy_reason"].startswith("GPU 1: counter: energy counter did not")
    assert win.sum_windows([], "NVML init failed")["energy_reason"] == "NVML init failed"


class FakeGpu(tm.Telemetry):
    """A scripted GPU: its energy counter reads `counter` values in turn (start, then end of the window)."""

    source = "nvml"
    power_reading = "instant"

    def __init__(self, counter: list[float]):
        self.counter = iter(counter)

    def sample(self, t_s: float, state: bool = True) -> tm.Sample:
        return tm.Sample(t_s, power_w=100.0)

    def energy_j(self) -> tuple[float | None, str | None]:
        return next(self.counter), None


def test_the_load_window_over_fake_gpus():
    clock = iter(float(i) for i in range(100))  # every read of the clock is a second later
    lw = win.LoadWindow([FakeGpu([1000.0, 1100.0]), FakeGpu([50.0, 80.0])], interval_s=60.0,
                        clock=lambda: next(clock))  # fmt: skip
    lw.start()
    got = lw.stop()
    assert got["energy_j"] == pytest.approx(130.0) and got["energy_gpus"] == 2  # (1100-1000) + (80-50)
    assert got["power_mean_w"] == pytest.approx(130.0 / got["energy_window_s"])
    assert re.fullmatch(r"nvml_energy_counter", got["energy_source"])
