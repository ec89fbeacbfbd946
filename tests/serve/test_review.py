"""The review of `tokenbench serve` (issue 16): each defect it found, as a test that fails on the old behaviour."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.cli.serve import listed_model, model_ids, redact
from bench.results import schema
from bench.serve import records as rec
from bench.serve import vllm_json as vj
from bench.serve import window as win
from bench.serve.metrics import format_block, peak_output_tokens_per_s, summarize
from bench.serve.model import LoadSpec, RequestResult, Slo
from bench.serve.sweep import scaled_prompts
from tests.serve.test_cli_serve import SMALL, run_files
from tests.serve.test_metrics import _ok, _results, _run
from tests.serve.test_records import ctx, results, stats


def serve(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["serve", *args], env=env)
    return res.exit_code, res.output


def one_line_error(code: int, text: str, words: str) -> None:
    assert code == 2 and text.count("\n") == 1 and text.startswith("tokenbench: error:") and words in text, text


# 1. --goodput as vLLM takes it: several name:value after one flag


def test_goodput_takes_several_values_after_one_flag(stub, tmp_path):
    server = stub(output_len=2)
    code, text = serve("--base-url", server.base_url, "--num-prompts", "2", *SMALL, "--goodput", "ttft:60000",
                       "tpot:20000", "--out", str(tmp_path))  # fmt: skip
    assert code == 0, text
    _, (r,), _ = run_files(tmp_path)
    assert (r["slo_ttft_s"], r["slo_tpot_s"], r["slo_e2el_s"]) == (60.0, 20.0, None)


@pytest.mark.parametrize(
    ("args", "words"),
    [(["tpot:20"], "unexpected argument 'tpot:20'"),
     (["--goodput", "ttft:60", "foo:1"], "--goodput 'foo:1'"),
     (["--goodput", "ttft:60", "tpot"], "--goodput 'tpot'")],
)  # fmt: skip
def test_goodput_values_are_checked(args, words, tmp_path):
    one_line_error(*serve("--base-url", "http://127.0.0.1:9", *args, "--out", str(tmp_path / "o")), words)


# 2. --client-processes above a point's concurrency: min(N, C) processes, recorded


def test_client_processes_never_exceed_the_points_cap(stub, tmp_path):
    assert [win.points_processes(4, c) for c in (1, 2, 8, None)] == [1, 2, 4, 4]
    server = stub(output_len=1)
    code, text = serve("--base-url", server.base_url, "--num-prompts", "2", *SMALL, "--concurrency-sweep", "1,2",
                       "--client-processes", "2", "--out", str(tmp_path))  # fmt: skip
    assert code == 0, text
    header, records, _ = run_files(tmp_path)
    assert header["state"] == "complete" and [r["client_processes"] for r in records] == [1, 2]


# 3. a starved client is `contended`, not `client_limited` (tests/serve/test_metrics.py has the rule)


def test_a_starved_client_is_recorded_contended():
    s = summarize(_run(_results(), client_lag_p99_s=0.02, client_cpu_per_process_s=[0.2]), LoadSpec())
    r = rec.point_record(s, _results(), ctx(), started_at="x", energy={})
    assert r["contended"] is True and r["client_limited"] is False and "other processes" in r["contention_reason"]
    assert schema.check_record(json.loads(json.dumps({**r, "started_at": "2026-01-01T00:00:00Z"}))) is None


# 4. refusals fail at once; --api-key as a bearer token, never written


def test_a_refusal_fails_at_once_with_its_status(stub, tmp_path):
    server = stub(models_status=401)
    code, text = serve("--base-url", server.base_url, "--ready-check-timeout-sec", "60", "--out", str(tmp_path / "o"))
    one_line_error(code, text, "refused (HTTP 401")
    assert len(server.models_asked) == 1 and not (tmp_path / "o").exists()  # no retry; nothing created


def test_the_api_key_is_sent_and_never_written(stub, tmp_path):
    server = stub(output_len=1)
    code, text = serve("--base-url", server.base_url, "--num-prompts", "2", *SMALL, "--api-key", "sekrit-1",
                       "--save-result", "--save-detailed", "--out", str(tmp_path))  # fmt: skip
    assert code == 0, text
    assert server.models_asked == ["Bearer sekrit-1"] and {r.authorization for r in server.requests} == {
        "Bearer sekrit-1"}  # fmt: skip
    assert all("sekrit" not in p.read_text() for p in tmp_path.iterdir())
    code, _ = serve("--base-url", server.base_url, "--num-prompts", "1", *SMALL, "--out", str(tmp_path / "env"),
                    env={"OPENAI_API_KEY": "from-env"})  # fmt: skip
    assert code == 0 and server.requests[-1].authorization == "Bearer from-env"
    assert redact(["--api-key=x", "--api-key", "y", "--model", "m"]) == ["--api-key=***", "--api-key", "***",
                                                                         "--model", "m"]  # fmt: skip


# 5. --ready-check-timeout-sec 0 skips the check


def test_ready_check_zero_skips_it_and_needs_a_model(stub, tmp_path):
    one_line_error(*serve("--base-url", "http://127.0.0.1:9", "--ready-check-timeout-sec", "0"), "give --model")
    server = stub(output_len=1)
    code, text = serve("--base-url", server.base_url, "--ready-check-timeout-sec", "0", "--model", "stub-model",
                       "--num-prompts", "1", *SMALL, "--out", str(tmp_path))  # fmt: skip
    assert code == 0, text
    header, (r,), _ = run_files(tmp_path)
    assert server.models_asked == [] and header["serve"]["ready_check"].startswith("skipped")
    assert header["serve"]["models"] is None and r["param_server_model"] is None  # nothing listed it


# 6. the model as the server lists it


def test_the_server_model_is_the_listed_id(stub, tmp_path):
    models = {"data": [{"id": "a"}, {"id": "b"}, {"x": 1}]}
    assert model_ids(models) == ["a", "b"] and model_ids(None) == []
    assert (listed_model(["a", "b"], None), listed_model(["a", "b"], "b"), listed_model(["a"], "z")) == ("a", "b", None)
    server = stub(output_len=1)
    code, text = serve("--base-url", server.base_url, "--model", "other", "--num-prompts", "1", *SMALL,
                       "--out", str(tmp_path))  # fmt: skip
    assert code == 0 and "--model 'other' is not among the models" in text and "(stub-model)" in text
    header, (r,), _ = run_files(tmp_path)
    assert header["serve"]["model_ids"] == ["stub-model"] and header["serve"]["model_sent"] == "other"
    assert r["param_server_model"] is None and server.requests[0].body["model"] == "other"


# 7. --save-result always writes vLLM's latencies and queue_times; compare works on imported runs


def test_save_result_round_trip_keeps_samples(stub, tmp_path):
    server = stub(output_len=2)
    out = tmp_path / "run"
    code, text = serve("--base-url", server.base_url, "--num-prompts", "3", *SMALL, "--max-concurrency", "1",
                       "--save-result", "--out", str(out))  # fmt: skip
    assert code == 0, text
    (saved,) = list(out.glob("*.vllm.json"))
    obj = json.loads(saved.read_text())
    assert len(obj["latencies"]) == len(obj["queue_times"]) == 3 and "ttfts" not in obj  # not --save-detailed
    assert obj["label"] is None and obj["max_output_tokens_per_s"] >= 1
    dirs = []
    for name in ("a", "b"):
        code, text = serve("--import-vllm", str(saved), "--out", str(tmp_path / name))
        assert code == 0, text
        (jsonl,) = list((tmp_path / name).glob("*.jsonl"))
        dirs.append(str(jsonl))
    r = json.loads(Path(dirs[0]).read_text().splitlines()[0])
    assert len(r["samples_s"]) == 3 and r["unstable"] is None and r["label"].startswith("conc 1, ")
    assert r["label"].count("conc 1") == 1 and r["hostname"] == "vllm import"
    res = CliRunner().invoke(app, ["compare", dirs[0], dirs[1]])
    assert "no samples to compare" not in res.output, res.output


def test_compare_says_why_imported_serve_runs_without_latencies_have_no_samples(tmp_path):
    obj = {"duration": 2.0, "completed": 4, "num_prompts": 4, "max_concurrency": 2, "model_id": "m",
           "output_throughput": 10.0, "date": "20260105-101500"}  # fmt: skip
    src = tmp_path / "v.json"
    src.write_text(json.dumps(obj))
    runs = []
    for name in ("a", "b"):
        assert serve("--import-vllm", str(src), "--out", str(tmp_path / name))[0] == 0
        runs.append(str(next((tmp_path / name).glob("*.jsonl"))))
    res = CliRunner().invoke(app, ["compare", *runs])
    text = " ".join(res.output.replace("│", " ").split())
    assert "a serve record keeps its requests' E2EL in samples_s" in text, res.output
    assert "pytest-benchmark" not in res.output


def test_import_label_is_not_doubled():
    base = {"duration": 2.0, "completed": 1, "max_concurrency": 4, "backend": "openai"}
    assert vj.from_vllm({**base, "label": None}, "f", "run", 0)["label"] == "vllm openai, conc 4"
    assert vj.from_vllm({**base, "label": "conc 4, 8/4 random"}, "f", "run", 0)["label"] == "vllm conc 4, 8/4 random"


# 8. vLLM's peak output tok/s and peak concurrency


def test_peak_output_tokens_per_s_by_hand():
    # chunks at absolute times: a 0.2 0.6 1.1; b 0.9 1.2 1.5 1.8 2.1 -> buckets from 0.0: [3, 4, 1]
    a = _ok(0, 0.0, [0.2, 0.6, 1.1], 1.1, 3)
    b = _ok(1, 0.5, [0.4, 0.7, 1.0, 1.3, 1.6], 1.6, 5)
    failed = RequestResult(2, 0.0, 0.0, error="x", chunk_times_s=[0.1, 0.15, 0.2, 0.25, 0.3])
    assert peak_output_tokens_per_s([a, b, failed]) == 4.0 and peak_output_tokens_per_s([failed]) is None
    s = summarize(_run([a, b, failed]), LoadSpec())
    text = format_block(s)
    rows = {x[:40].strip(): x[40:].strip() for x in text.splitlines()}
    assert rows["Peak output token throughput (tok/s):"] == "4.00" and rows["Peak concurrent requests:"] == "2.00"


# 10. energy: only the serving GPUs


def test_energy_gpus_are_the_serving_ones():
    assert win.pick_gpus(8, None, None) == (list(range(8)), None)
    assert win.pick_gpus(8, None, 8) == (list(range(8)), None)
    picked, why = win.pick_gpus(8, None, 1)
    assert picked == [] and "--num-gpus 1 differs from the 8 GPUs NVML sees" in why
    assert win.pick_gpus(8, [3, 1, 3], 1) == ([1, 3], None)
    with pytest.raises(ValueError, match="--energy-gpus: GPU 8 is not among the 8"):
        win.pick_gpus(8, [8], None)
    assert win.parse_gpu_list("0, 2") == [0, 2] and win.parse_gpu_list(None) is None
    with pytest.raises(ValueError, match="--energy-gpus 'a'"):
        win.parse_gpu_list("a")


def test_the_energy_window_opens_when_the_load_starts(stub):
    from bench.serve.load import run_load_point
    from tests.serve.conftest import endpoint_of
    from tests.serve.test_load import _requests

    server, seen = stub(output_len=1), []
    run = run_load_point(endpoint_of(server), _requests(2), LoadSpec(num_prompts=2), request_timeout_s=10,
                         on_start=lambda: seen.append(len(server.requests)))  # fmt: skip
    assert seen == [0] and len(run.results) == 2  # called once, before any request


# 11. never `unstable`; 12. input token source; 13. queue only under a cap


def test_serve_records_are_never_unstable_and_say_their_input_source():
    r = rec.point_record(stats(), results(), ctx(), started_at="x", energy={})
    assert r["unstable"] is None and r["cv_threshold"] is None and r["time_cv"] is not None
    s = summarize(_run(_results()), LoadSpec())
    assert s.input_tokens_source == "nominal" and "Input tokens: nominal: the dataset's count" in format_block(s)


def test_queue_only_under_a_cap_else_send_lateness():
    free = summarize(_run(_results()), LoadSpec())
    assert free.queue.n == 0 and free.send_late_max_s == pytest.approx(0.5)  # 0, 0.25, 0.5, 0.5 late
    assert "queue time" not in format_block(free) and "P99 send lateness (ms):" in format_block(free)
    capped = summarize(_run(_results()), LoadSpec(max_concurrency=2))
    assert capped.queue.n == 4 and capped.send_late_max_s is None and "Mean queue time (ms):" in format_block(capped)


# 14. MLPerf's rule for presets; 15. --goodput over a preset is labelled


def test_mlperf_rule_checks_each_p99_separately():
    # stats(): p99 TTFT 0.3 <= 0.5 and p99 TPOT 0.04 <= 0.05, yet only 8 of 10 requests met both bounds
    assert rec.slo_fields(stats(), 0.99, "goodput-attainment")["slo_met"] is False
    f = rec.slo_fields(stats(), 0.99, "mlperf-p99")
    assert f["slo_met"] is True and f["slo_rule"] == "mlperf-p99" and f["slo_attainment"] == pytest.approx(0.8)
    tight = stats()
    tight.slo = Slo(ttft_s=0.25, tpot_s=0.05)  # p99 TTFT 0.3 > 0.25
    assert rec.slo_fields(tight, 0.99, "mlperf-p99")["slo_met"] is False


def test_goodput_with_a_preset_says_what_was_applied(stub, tmp_path):
    server = stub(output_len=2)
    code, text = serve("--base-url", server.base_url, "--num-prompts", "2", *SMALL, "--slo-preset", "llama3.1-8b",
                       "--goodput", "ttft:60000", "--out", str(tmp_path))  # fmt: skip
    assert code == 0, text
    header, (r,), _ = run_files(tmp_path)
    assert "given with --slo-preset llama3.1-8b, whose bounds and rule were not applied" in header["slo_source"]
    assert r["slo_rule"] == "goodput-attainment" and "slo_preset" not in r and r["slo_ttft_s"] == 60.0


def test_a_preset_alone_uses_mlperf_rule(stub, tmp_path):
    server = stub(output_len=2)
    code, text = serve("--base-url", server.base_url, "--num-prompts", "2", *SMALL, "--slo-preset", "llama3.1-8b",
                       "--out", str(tmp_path))  # fmt: skip
    assert code == 0, text
    _, (r,), _ = run_files(tmp_path)
    assert (r["slo_rule"], r["slo_preset"], r["slo_target"], r["slo_met"]) == ("mlperf-p99", "llama3.1-8b", None, True)


# 16. prompts scaled with concurrency; ignore_eos on for random as vLLM


def test_prompts_per_concurrency_and_ignore_eos_default(stub, tmp_path):
    assert scaled_prompts(LoadSpec(max_concurrency=8, num_prompts=5), 3).num_prompts == 24
    assert scaled_prompts(LoadSpec(num_prompts=5), 3).num_prompts == 5
    server = stub(output_len=1)
    code, text = serve("--base-url", server.base_url, *SMALL, "--concurrency-sweep", "1,2",
                       "--prompts-per-concurrency", "2", "--out", str(tmp_path))  # fmt: skip
    assert code == 0, text
    _, records, requests = run_files(tmp_path)
    assert [r["param_num_prompts"] for r in records] == [2, 4] and len(requests) == 6
    assert all(req.body.get("ignore_eos") is True for req in server.requests)
    code, _ = serve("--base-url", server.base_url, *SMALL, "--num-prompts", "1", "--no-ignore-eos",
                    "--out", str(tmp_path / "b"))  # fmt: skip
    assert code == 0 and "ignore_eos" not in server.requests[-1].body
    one_line_error(*serve("--base-url", "http://127.0.0.1:9", "--prompts-per-concurrency", "2"),
                   "--prompts-per-concurrency needs")  # fmt: skip
    search = ["--goodput", "ttft:9", "--slo-search", "concurrency", "--slo-search-high", "8"]
    one_line_error(*serve("--base-url", "http://x:9", "--prompts-per-concurrency", "2", *search), "(not --slo-search)")


# Polish


def test_percentiles_printed_as_asked_and_gpu_line_only_when_known(stub, tmp_path):
    server = stub(output_len=2)
    code, text = serve("--base-url", server.base_url, "--num-prompts", "2", *SMALL, "--metric-percentiles", "95,50",
                       "--out", str(tmp_path))  # fmt: skip
    assert code == 0, text
    ttft = [x.split(":")[0] for x in text.splitlines() if x.startswith("P") and "TTFT" in x]
    assert ttft == ["P95 TTFT (ms)", "P50 TTFT (ms)"] and "per GPU" not in text  # no NVML, no --num-gpus here
    _, (r,), _ = run_files(tmp_path)
    assert r["ttft_p90_s"] is not None and r["ttft_p99_s"] is not None and r["started_at"].endswith("Z")


def test_nothing_completed_says_so():
    failed = [RequestResult(0, 0.0, 0.0, error="HTTP 500: x", done_s=0.1)]
    text = format_block(summarize(_run(failed), LoadSpec()))
    assert "Tokens: nothing completed" in text and "Output tokens:" not in text


def test_sharegpt_label_has_no_lengths():
    s = stats(spec=LoadSpec(request_rate=20.0, num_prompts=10))
    assert rec.label(s, ctx(dataset="sharegpt", input_len=None, output_len=None)) == "rate 20/s, sharegpt"


def test_range_ratio_one_names_the_flag(tmp_path):
    one_line_error(*serve("--base-url", "http://127.0.0.1:9", "--random-range-ratio", "1"), "--random-range-ratio 1")


def test_imported_date_is_utc_with_z():
    r = vj.from_vllm({"duration": 1.0, "completed": 1, "date": "20260105-101500"}, "f", "run", 0)
    assert r["started_at"].endswith(".000Z") and not math.isnan(len(r["started_at"]))
