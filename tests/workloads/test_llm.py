"""LLM workloads: parameter and FLOP counts by hand, KV-cache decoding against recomputation,
serving metrics by hand, and the invariants every record must keep."""

from __future__ import annotations

import pytest
import torch

import workloads
from bench.device.base import CpuDevice
from bench.measure.runner import Runner
from bench.measure.suites import Entry
from bench.measure.timing import TimerConfig
from bench.results.schema import check_record
from bench.results.writer import RunWriter
from workloads.decode import step_bytes
from workloads.llama import PRESETS, KVCache, Transformer, from_name, n_matmul_params, n_params
from workloads.llm_metrics import decode_metrics, mbu, mfu, train_flops_per_token

FAST = TimerConfig(warmup_s=0.0, min_time_s=0.0, min_reps=3, max_reps=3)


# --- counts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        # 16 x (q,o 2*2048^2 + k,v 2*2048*512 + mlp 3*2048*8192 + norms 2*2048) + tied 128256*2048 + 2048
        ("llama-3.2-1b", 1_235_814_400),
        # 32 x 218,112,000 + 2 x 128256*4096 + 4096: the published 8.03B
        ("llama-3.1-8b", 8_030_261_248),
        # 80 x 855,654,400 + 2 x 128256*8192 + 8192: the published 70.55B
        ("llama-3.1-70b", 70_553_706_496),
    ],
)
def test_parameter_counts_match_the_published_models(preset, expected):
    assert n_params(PRESETS[preset]) == expected


def test_the_model_has_exactly_the_counted_parameters():
    for preset in ("tiny", "llama-3.2-1b"):
        a = from_name(preset, n_layers=1)
        with torch.device("meta"):
            model = Transformer(a, 16)
        assert sum(p.numel() for p in model.parameters()) == n_params(a)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_build_model_allocates_in_its_dtype_keeps_ties_and_initialises_everything(cpu, dtype):
    from workloads.llm_base import build_model

    model = build_model(from_name("llama-3.2-1b", 1), 8, cpu, 0, dtype)
    assert model.output.weight is model.tok_embeddings.weight  # tied, as the real 1B is
    assert sum(p.numel() for p in model.parameters()) == n_params(from_name("llama-3.2-1b", 1))
    assert all(p.dtype == dtype and torch.isfinite(p).all() for p in model.parameters())
    assert torch.equal(model.norm.weight, torch.ones_like(model.norm.weight))
    assert model.rope_cos.dtype == torch.float32 and model.rope_cos[0].eq(1).all()  # cos(0) = 1


def test_matmul_parameters_exclude_the_embedding_gather():
    a = PRESETS["llama-3.1-8b"]  # untied: the 128256 x 4096 input table is a lookup, not a matmul
    assert n_matmul_params(a) == n_params(a) - 65 * 4096 - 128_256 * 4096 == 7_504_658_432
    tied = PRESETS["llama-3.2-1b"]  # tied: that table is the output head, which does multiply
    assert n_matmul_params(tied) == n_params(tied) - 33 * 2048


def test_train_flops_match_nanogpt_for_gpt2_124m():
    # nanoGPT estimate_mfu: N = 124,439,808 - 786,432 position embeddings; 6N + 12*L*H*Q*T
    n = 124_439_808 - 786_432
    assert train_flops_per_token(n, 12, 12, 64, 1024, causal=False) == 6 * n + 12 * 12 * 12 * 64 * 1024 == 855_166_464


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        # 6N + 6*L*H*Q*(T+1) at T = 2048, N the matmul parameters:
        ("llama-3.2-1b", 6 * 1_235_746_816 + 6 * 16 * 32 * 64 * 2049),  # 7,414,480,896 + 402,849,792
        ("llama-3.1-8b", 6 * 7_504_658_432 + 6 * 32 * 32 * 128 * 2049),  # 45,027,950,592 + 1,611,399,168
        ("llama-3.1-70b", 6 * 69_501_714_432 + 6 * 80 * 64 * 128 * 2049),  # 417,010,286,592 + 8,056,995,840
    ],
)
def test_train_flops_causal_counts_unmasked_pairs_once(preset, expected):
    a = PRESETS[preset]
    got = train_flops_per_token(n_matmul_params(a), a.n_layers, a.n_heads, a.head_dim, 2048, causal=True)
    assert got == expected
    assert expected in (7_817_330_688, 46_639_349_760, 425_067_282_432)  # the sums, worked out


def test_prefill_and_decode_flop_counts():
    p = workloads.get("prefill").parse({"model": "tiny", "batch": 2, "prompt_len": 4})
    a = p.args()  # tiny: N_mm 458,752 of which head 512*128 = 65,536; L2 H4 Q32
    per_seq = 2 * (458_752 - 65_536) * 4 + 2 * 65_536 + 4 * (4 * 2 * 4 * 32 * (4 + 1) / 2)
    assert workloads.get("prefill").counts(p).flops == 2 * per_seq
    d = workloads.get("decode").parse({"model": "tiny", "batch": 2, "prompt_len": 4, "new_tokens": 3})
    steps = sum(2 * 458_752 + 4 * a.n_layers * a.n_heads * a.head_dim * (4 + i) for i in (1, 2))
    assert workloads.get("decode").counts(d).flops == 2 * per_seq + 2 * steps
    assert workloads.get("decode").counts(d).tokens == 6  # output tokens: batch x new_tokens


def test_decode_step_bytes_hand_computed():
    # 8B bf16, batch 1, N 512 + M 128: weights 7,504,658,432 x 2 bytes; KV 2*32*8*128*2 = 131,072
    # bytes per position at the mean context 512 + 64
    p = workloads.get("decode").parse({"model": "llama-3.1-8b", "dtype": "bf16"})
    assert step_bytes(p) == 15_009_316_864 + 131_072 * 576


def test_mfu_and_mbu():
    assert mfu(6e9, 1000.0, 12e12) == pytest.approx(0.5)  # 6 GFLOP/token x 1000 tok/s / 12 TFLOP/s
    assert mbu(2e9, 0.001, 4e12) == pytest.approx(0.5)  # 2 GB per step every ms / 4 TB/s
    assert mfu(6e9, 1000.0, None) is None and mbu(2e9, 0.001, None) is None


def test_decode_metrics_hand_computed():
    # two calls of batch 2, three tokens each, times from each call's start
    m = decode_metrics([[0.10, 0.12, 0.15], [0.20, 0.21, 0.23]], batch=2)
    assert m["ttft_median_s"] == pytest.approx(0.15)  # median of 0.10, 0.20
    assert m["tpot_median_s"] == pytest.approx((0.025 + 0.015) / 2)  # (0.15-0.10)/2, (0.23-0.20)/2
    assert m["itl_median_s"] == pytest.approx(0.02)  # gaps 0.02, 0.03, 0.01, 0.02: sorted, the middle two are 0.02
    assert m["e2e_median_s"] == pytest.approx(0.19)
    assert m["output_tokens_per_s"] == pytest.approx(2 * 3 / 0.19)
    assert m["per_user_tokens_per_s"] == pytest.approx(1 / 0.02)
    assert m["ttft_median_s"] <= m["e2e_median_s"] and m["itl_p90_s"] <= m["itl_p99_s"]


# --- the model ---------------------------------------------------------------------------------------


def tiny_model(seed: int = 0, max_len: int = 64) -> Transformer:
    model = Transformer(PRESETS["tiny"], max_len)
    model.init_weights(torch.Generator().manual_seed(seed))
    return model.eval()


def test_kv_cache_decoding_gives_exactly_the_greedy_tokens_of_full_recomputation():
    model = tiny_model()
    prompt = torch.randint(0, 512, (3, 9), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        model.setup_cache(3, 32)  # cached: prefill once, then one token at a time
        cached = [model(prompt, 0, last_only=True)[:, -1].argmax(-1)]
        for i in range(1, 12):
            cached.append(model(cached[-1][:, None], 9 + i - 1)[:, -1].argmax(-1))
        model.setup_cache(0, 0)  # recomputed: the whole sequence through the model every step
        seq = prompt
        for _ in range(12):
            nxt = model(seq)[:, -1].argmax(-1)
            seq = torch.cat([seq, nxt[:, None]], dim=1)
    assert torch.equal(torch.stack(cached, dim=1), seq[:, 9:])


def test_chunked_prefill_after_cached_positions_matches_one_pass():
    model = tiny_model()
    tokens = torch.randint(0, 512, (2, 12), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        full = model(tokens)
        model.setup_cache(2, 16)
        model(tokens[:, :5])
        rest = model(tokens[:, 5:], 5)  # 7 queries over 12 keys: the explicit mask path
    assert torch.allclose(rest, full[:, 5:], atol=1e-5)


# --- workloads through the runner --------------------------------------------------------------------


def run(cpu, tmp_path, wid, **raw):
    w = workloads.get(wid)
    rec = Runner(cpu, RunWriter(tmp_path, "r", {}), {}, seed=0).run([Entry(w, w.parse(raw), FAST)])[0]
    assert check_record(rec) is None  # every LLM field has its schema type
    return rec


def test_decode_record_keeps_its_invariants(cpu, tmp_path):
    rec = run(cpu, tmp_path, "decode", model="tiny", batch=2, prompt_len=8, new_tokens=5)
    assert rec["status"] == "ok", rec["reason"]
    assert rec["tokens"] == 2 * 5 and rec["compute_dtype"] == "fp32"
    assert 0 < rec["ttft_median_s"] <= rec["e2e_median_s"] <= rec["time_median_s"] * 1.5
    assert rec["tpot_median_s"] > 0 and rec["itl_p99_s"] >= rec["itl_median_s"]
    assert rec["output_tokens_per_s"] == pytest.approx(10 / rec["e2e_median_s"])
    assert rec["mbu"] is None and rec["decode_step_bytes"] > 0  # no peak for a CPU
    assert "greedy tokens equal: 10/10" in rec["check_detail"]  # first and last rows, 5 tokens each


def test_train_record_and_its_check(cpu, tmp_path):
    rec = run(cpu, tmp_path, "train", model="tiny", batch=2, seq_len=16)
    assert rec["status"] == "ok" and rec["check_passed"] and 0 < rec["loss"] < 20
    assert rec["tokens"] == 32 and rec["flops"] == pytest.approx(rec["flops_per_token_causal"] * 32)


def test_train_check_fails_when_gradients_do_not_flow(cpu):
    w = workloads.get("train")
    with w.prepare(w.parse({"model": "tiny", "batch": 2, "seq_len": 16}), cpu, seed=0) as case:
        case.opt.step = lambda: None  # an optimizer that never moves the weights
        result = case.check()
    assert not result.passed and result.error == pytest.approx(1.0)


def test_prefill_check_catches_a_cache_that_is_not_written(cpu, monkeypatch):
    w = workloads.get("prefill")
    with w.prepare(w.parse({"model": "tiny", "prompt_len": 16}), cpu, seed=0) as case:
        assert case.check().passed
        monkeypatch.setattr(
            KVCache, "update", lambda self, start, k, v: (self.k[:, :, : start + 1], self.v[:, :, : start + 1])
        )
        broken = case.check()
    assert not broken.passed and broken.error > 0.1


def test_a_model_that_cannot_fit_is_skipped_with_its_needs(cpu, tmp_path):
    rec = run(cpu, tmp_path, "decode", model="llama-3.1-70b")  # 70B in fp32: ~280 GB
    assert rec["status"] == "skipped" and "needs about" in rec["reason"]
    assert rec["model_params"] == 70_553_706_496 and rec["model_layers"] == 80


class _SmallCpu(CpuDevice):
    def mem_free_bytes(self) -> int:
        return 2**30  # 1 GiB: no Llama shape fits, so nothing is allocated


def test_fewer_layers_are_recorded_even_when_skipped(tmp_path):
    dev = _SmallCpu(torch_device=torch.device("cpu"), name="small")
    w = workloads.get("prefill")
    p = w.parse({"model": "llama-3.1-8b", "n_layers": 1, "prompt_len": 4})
    (rec,) = Runner(dev, RunWriter(tmp_path, "r", {}), {}, seed=0).run([Entry(w, p, FAST)])
    assert rec["status"] == "skipped" and "needs about" in rec["reason"]
    assert (rec["model_layers"], rec["model_layers_full"]) == (1, 32) and "(1 layers)" in rec["label"]
    assert rec["model_params"] == 218_112_000 + 2 * 128_256 * 4096 + 4096


def test_bad_llm_params():
    with pytest.raises(workloads.ParamsError, match="model"):
        workloads.get("train").parse({"model": "gpt-5"})
    with pytest.raises(workloads.ParamsError, match="new_tokens"):
        workloads.get("decode").parse({"new_tokens": 1})


@pytest.mark.slow
@pytest.mark.parametrize(
    ("wid", "raw"),
    [
        ("train", {"batch": 2, "seq_len": 16}),
        ("prefill", {"batch": 2, "prompt_len": 16}),
        ("decode", {"batch": 2, "prompt_len": 8, "new_tokens": 4}),
    ],
)
def test_compiled_mode_checks_and_reports_compile_time_apart(cpu, tmp_path, wid, raw):
    """torch.compile runs (about 20 s a model on 2 cores); its time is compile_s, not a sample."""
    rec = run(cpu, tmp_path, wid, model="tiny", compile=True, **raw)
    assert rec["status"] == "ok", rec["reason"]
    assert rec["kernel"] == "torch.compile" and "compiled" in rec["label"]
    assert rec["compile_s"] == rec["first_call_s"] > max(rec["samples_s"])


@pytest.mark.parametrize("wid", ["decode", "prefill"])
def test_bf16_checks_catch_a_cache_that_is_not_written(cpu, monkeypatch, wid):
    """In bf16 such a bug hides in rounding noise; the fp32 copy in the check exposes it."""
    w = workloads.get(wid)
    raw = {"model": "tiny", "batch": 2, "prompt_len": 16, "dtype": "bf16"}
    p = w.parse({**raw, "new_tokens": 4} if wid == "decode" else raw)
    with w.prepare(p, cpu, seed=0) as case:
        assert case.check().passed
        monkeypatch.setattr(
            KVCache, "update", lambda self, start, k, v: (self.k[:, :, : start + 1], self.v[:, :, : start + 1])
        )
        broken = case.check()
    assert not broken.passed and "fp32 copy" in broken.detail
