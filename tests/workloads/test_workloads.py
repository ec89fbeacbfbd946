"""Workloads: analytic counts against hand-computed values, output checks that pass and fail."""

from __future__ import annotations

import pytest
import torch

import workloads
from workloads.attention import attention_pairs, reference
from workloads.base import ParamsError, float32_matmul_precision


def counts(wid: str, **raw):
    w = workloads.get(wid)
    return w.counts(w.parse(raw))


# --- GEMM ---------------------------------------------------------------------------------------


def test_gemm_counts_hand_computed():
    # 2*m*n*k = 2*2*3*4 = 48 FLOPs; fp32 bytes = (A 2*4 + B 4*3 + C 2*3) * 4 = 26 * 4 = 104
    c = counts("gemm", m=2, n=3, k=4, dtype="fp32")
    assert (c.flops, c.bytes, c.tokens) == (48.0, 104.0, None)
    assert counts("gemm", m=2, n=3, k=4, dtype="bf16").bytes == 52.0  # 26 * 2
    assert counts("gemm", m=2, n=3, k=4, dtype="tf32").bytes == 104.0  # tf32 is stored as fp32
    # fp8: A and B one byte each (8 + 12), C in bf16 (6 * 2) = 32
    assert counts("gemm", m=2, n=3, k=4, dtype="fp8").bytes == 32.0


def test_gemm_8192_cube_is_1_1_petaflop():
    assert counts("gemm", m=8192, n=8192, k=8192, dtype="bf16").flops == 2 * 8192**3 == 1_099_511_627_776


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16", "fp8"])
def test_gemm_check_passes_on_cpu(cpu, dtype):
    # fp8 is skipped by the CPU device for benchmarking, but torch's CPU _scaled_mm runs the same
    # code path, so the layout (B column-major) and the check are exercised here.
    w = workloads.get("gemm")
    p = w.parse({"m": 64, "n": 48, "k": 256, "dtype": dtype})
    with w.prepare(p, cpu, seed=1) as case:
        out = case.run()
        assert out.shape == (64, 48)
        result = case.check()
    assert result.passed, result
    assert 0 < result.error <= result.tolerance


def test_gemm_check_catches_a_wrong_answer(cpu):
    w = workloads.get("gemm")
    p = w.parse({"m": 64, "n": 64, "k": 64, "dtype": "bf16"})
    with w.prepare(p, cpu, seed=1) as case:
        # a kernel that drops the last 8 terms of the reduction: the kind of bug a check must see
        case._mm = lambda a, b, out: torch.mm(a[:, :-8], b[:-8], out=out)
        result = case.check()
    assert not result.passed and result.error > 10 * result.tolerance


def test_gemm_check_catches_nan(cpu):
    w = workloads.get("gemm")
    p = w.parse({"m": 32, "n": 32, "k": 32, "dtype": "fp32"})
    with w.prepare(p, cpu, seed=1) as case:
        case._mm = lambda a, b, out: out.copy_(torch.mm(a, b)).index_fill_(0, torch.tensor([3]), float("nan"))
        result = case.check()
    assert not result.passed and result.error == float("inf")


def test_gemm_fp8_needs_n_and_k_multiples_of_16():
    # torch._scaled_mm needs mat1's trailing dim (k) and both dims of mat2 (k, n) divisible by 16;
    # m is free (decode-like shapes with m = 8 are legal)
    w = workloads.get("gemm")

    class CudaLike:
        def unsupported_dtype_reason(self, dtype):
            return None

    def reason(m, n, k):
        return w.unsupported_reason(w.parse({"m": m, "n": n, "k": k, "dtype": "fp8"}), CudaLike())

    assert reason(8, 32, 32) is None
    assert "n=24" in reason(32, 24, 32) and "k=40" in reason(32, 32, 40)


def test_tf32_precision_is_restored(cpu):
    w = workloads.get("gemm")
    before = torch.get_float32_matmul_precision()
    with w.prepare(w.parse({"m": 8, "n": 8, "k": 8, "dtype": "tf32"}), cpu, seed=0):
        assert torch.get_float32_matmul_precision() == "high"
    assert torch.get_float32_matmul_precision() == before


# --- copy ---------------------------------------------------------------------------------------


def test_copy_counts_read_plus_write():
    assert counts("copy", size_mib=1).bytes == 2 * 2**20
    assert counts("copy", size_mib=0.5).flops is None


def test_copy_check_is_bit_exact(cpu):
    w = workloads.get("copy")
    with w.prepare(w.parse({"size_mib": 1}), cpu, seed=0) as case:
        assert case.check().passed
        case.dst.copy_ = lambda src: None  # a copy that writes nothing leaves NaN behind
        failed = case.check()
    assert not failed.passed and failed.error == 2**20 // 4


# --- attention ----------------------------------------------------------------------------------


def test_attention_pairs():
    assert attention_pairs(4, causal=True) == 10  # 4 + 3 + 2 + 1
    assert attention_pairs(4, causal=False) == 16


def test_attention_counts_hand_computed():
    # causal: 4 * b * h * d * pairs = 4 * 1 * 2 * 8 * 10 = 640
    c = counts("attention", batch=1, heads=2, kv_heads=1, seq_len=4, head_dim=8, dtype="fp32")
    assert c.flops == 640.0
    # bytes: Q and O with 2 heads, K and V with 1: b*s*d*(2*2 + 2*1) = 1*4*8*6 = 192 elements * 4 bytes
    assert c.bytes == 768.0 and c.tokens == 4
    full = counts("attention", batch=1, heads=2, kv_heads=1, seq_len=4, head_dim=8, dtype="fp32", causal=False)
    assert full.flops == 4 * 1 * 2 * 8 * 16


def test_attention_reference_first_row_is_first_value():
    # causal row 0 attends only to key 0, so its output is exactly v[0]
    q, k, v = (torch.randn(5, 4, dtype=torch.float64) for _ in range(3))
    assert torch.allclose(reference(q, k, v, causal=True)[0], v[0])


@pytest.mark.parametrize(("dtype", "kv_heads"), [("fp32", None), ("fp32", 2), ("bf16", 4), ("fp16", 1)])
def test_attention_check_passes_on_cpu(cpu, dtype, kv_heads):
    w = workloads.get("attention")
    p = w.parse({"batch": 2, "heads": 4, "kv_heads": kv_heads, "seq_len": 64, "head_dim": 16, "dtype": dtype})
    with w.prepare(p, cpu, seed=3) as case:
        assert case.run().shape == (2, 4, 64, 16)
        result = case.check()
    assert result.passed, result


def test_attention_check_catches_a_missing_causal_mask(cpu):
    w = workloads.get("attention")
    p = w.parse({"batch": 1, "heads": 2, "seq_len": 32, "head_dim": 16, "dtype": "fp32"})
    with w.prepare(p, cpu, seed=3) as case:
        case._sdpa = lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=False)
        result = case.check()
    assert not result.passed and result.error > 0.1


# --- parameters and memory estimates -------------------------------------------------------------


@pytest.mark.parametrize(
    ("wid", "raw", "field"),
    [
        ("gemm", {"m": -1}, "m"),
        ("gemm", {"k": 0}, "k"),
        ("gemm", {"dtype": "fp64"}, "dtype"),
        ("gemm", {"mm": 4}, "mm"),
        ("copy", {"size_mib": -5}, "size_mib"),
        ("attention", {"heads": 6, "kv_heads": 4}, "multiple of kv_heads"),
    ],
)
def test_bad_params_give_one_line(wid, raw, field):
    with pytest.raises(ParamsError) as e:
        workloads.get(wid).parse(raw)
    msg = str(e.value)
    assert msg.startswith(f"{wid}: ") and field in msg and "\n" not in msg


def test_unknown_workload_names_the_known_ones():
    with pytest.raises(workloads.UnknownWorkload) as e:
        workloads.get("gemmm")
    assert "'gemmm'" in str(e.value) and "gemm" in str(e.value).split("known are")[1]


@pytest.mark.parametrize(
    ("wid", "raw"),
    [
        ("gemm", {"m": 96, "n": 64, "k": 128, "dtype": "fp32"}),
        ("gemm", {"m": 96, "n": 64, "k": 128, "dtype": "bf16"}),
        ("copy", {"size_mib": 4}),
        ("attention", {"batch": 2, "heads": 4, "kv_heads": 2, "seq_len": 128, "head_dim": 32, "dtype": "fp32"}),
    ],
)
def test_memory_estimate_covers_timed_tensors(cpu, wid, raw):
    """The estimate must be at least what the case really holds, or the fit check lets OOMs through."""
    w = workloads.get(wid)
    p = w.parse(raw)
    with w.prepare(p, cpu, seed=0) as case:
        held = sum(t.numel() * t.element_size() for t in vars(case).values() if isinstance(t, torch.Tensor))
    assert w.memory_bytes(p) >= held > 0


def test_every_registered_workload_is_complete():
    for wid, w in workloads.REGISTRY.items():
        assert w.id == wid and w.version >= 1 and w.family and w.description
        p = w.Params()  # defaults validate
        assert isinstance(w.label(p), str) and w.memory_bytes(p) > 0


@pytest.mark.parametrize("before", ["high", "medium", "highest"])
def test_precision_context_restores_the_previous_setting_even_on_error(before):
    old = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(before)
    try:
        with pytest.raises(RuntimeError, match="workload failed"), float32_matmul_precision("fp32"):
            assert torch.get_float32_matmul_precision() == "highest"
            raise RuntimeError("workload failed")
        assert torch.get_float32_matmul_precision() == before
    finally:
        torch.set_float32_matmul_precision(old)


def test_gemm_fp32_check_catches_reduced_precision(cpu):
    w = workloads.get("gemm")
    p = w.parse({"m": 64, "n": 64, "k": 256, "dtype": "fp32"})
    with w.prepare(p, cpu, seed=1) as case:
        # TF32 or bf16 math silently used for "fp32": the inputs lose their low mantissa bits
        case._mm = lambda a, b, out: torch.mm(a.bfloat16().float(), b.bfloat16().float(), out=out)
        result = case.check()
    assert not result.passed and result.error > 10 * result.tolerance


def test_attention_check_sees_a_wrong_last_head(cpu):
    w = workloads.get("attention")
    p = w.parse({"batch": 2, "heads": 4, "kv_heads": 2, "seq_len": 32, "head_dim": 16, "dtype": "fp32"})
    with w.prepare(p, cpu, seed=3) as case:
        real = case._sdpa

        def last_head_wrong(q, k, v):
            out = real(q, k, v).clone()
            out[-1, -1] = 0.0
            return out

        case._sdpa = last_head_wrong
        result = case.check()
    assert not result.passed


def test_memory_estimates_hand_computed():
    g = workloads.get("gemm")
    # fp32 m=2 n=3 k=4: timed (8 + 12 + 6) * 4 = 104; check: fresh A, B, C (104) + fp64 A, B,
    # reference and difference (8 + 12 + 2 * 6) * 8 = 256 + a 6-byte mask = 366; total 470
    assert g.memory_bytes(g.parse({"m": 2, "n": 3, "k": 4, "dtype": "fp32"})) == 470
    a = workloads.get("attention")
    # fp32 b1 h2/1kv s4 d8: Q,K,V,O = 4 * 8 * 6 * 4 = 768 bytes, twice (timed + check) = 1536;
    # one fp64 reference head: scores, softmax (2 * 8) + mask (1) per pair = 16 * 17 = 272,
    # plus q, k, v, o rows 4 * 4 * 8 * 8 = 1024; total 2832
    p = a.parse({"batch": 1, "heads": 2, "kv_heads": 1, "seq_len": 4, "head_dim": 8, "dtype": "fp32"})
    assert a.memory_bytes(p) == 2832


# --- parameters bounded: finite floats, integers that are no true/false and fit 64 bits ------------


@pytest.mark.parametrize(
    ("wid", "raw", "message"),
    [
        ("copy", {"size_mib": "inf"}, "size_mib: Input should be a finite number"),
        ("copy", {"size_mib": float("inf")}, "size_mib: Input should be a finite number"),
        ("copy", {"size_mib": "nan"}, "size_mib: Input should be a finite number"),
        ("copy", {"size_mib": "1e400"}, "size_mib: Input should be a finite number"),
        ("all_reduce", {"size_kib": float("inf")}, "size_kib: Input should be a finite number"),
        ("gemm", {"m": True}, "m: Input should be a number, not true or false"),
        ("copy", {"size_mib": False}, "size_mib: Input should be a number, not true or false"),
        ("decode", {"n_layers": True}, "n_layers: Input should be a number, not true or false"),
        ("gemm", {"m": 2**63}, "m: Input should be a 64-bit integer (less than 2^63 in size)"),
        ("gemm", {"k": str(10**30)}, "k: Input should be a 64-bit integer (less than 2^63 in size)"),
        ("all_gather", {"corrupt_rank": 2**64}, "corrupt_rank: Input should be a 64-bit integer"),
    ],
)
def test_numbers_that_would_fail_every_record_are_refused_before_running(wid, raw, message):
    with pytest.raises(ParamsError) as e:
        workloads.get(wid).parse(raw)
    assert str(e.value).startswith(f"{wid}: {message}") and "\n" not in str(e.value)


def test_strings_from_the_command_line_and_real_booleans_still_parse():
    p = workloads.get("gemm").parse({"m": "512", "n": 64, "k": "2048", "corrupt": "true"})
    assert (p.m, p.n, p.k, p.corrupt) == (512, 64, 2048, True)
    d = workloads.get("decode").parse({"compile": True, "batch": "8"})
    assert d.compile is True and d.batch == 8
    assert workloads.get("copy").parse({"size_mib": 1}).size_mib == 1.0  # a TOML integer for a float
    assert workloads.get("gemm").parse({"m": 2**63 - 1}).m == 2**63 - 1
