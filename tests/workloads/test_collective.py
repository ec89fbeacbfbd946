"""Collectives without processes: nccl-tests factors and sizes by hand, the exact check's values."""

from __future__ import annotations

import pytest
import torch

import workloads
from bench.device.base import cpu_device
from workloads.collective import (
    CollectiveCase,
    CollectiveParams,
    _pieces,
    busbw_factor,
    elements_per_rank,
    exact,
    pattern,
    size_bytes,
)


@pytest.mark.parametrize(
    ("op", "n", "factor"),
    [("all_reduce", 2, 1.0), ("all_reduce", 4, 1.5), ("all_reduce", 8, 1.75), ("all_gather", 2, 0.5),
     ("all_gather", 8, 0.875), ("reduce_scatter", 4, 0.75), ("all_reduce", 1, 0.0)],
)  # fmt: skip
def test_busbw_factors_are_the_nccl_tests_ones(op, n, factor):
    assert busbw_factor(op, n) == factor


def test_size_rounds_down_to_whole_elements_per_rank():
    p = CollectiveParams(size_kib=1.01)  # 1034 bytes = 258.5 fp32 elements
    assert elements_per_rank(p, "all_reduce", 4) == 258 and size_bytes(p, "all_reduce", 4) == 1032
    assert elements_per_rank(p, "all_gather", 4) == 64 and size_bytes(p, "all_gather", 4) == 1024
    bf16 = CollectiveParams(size_kib=1, dtype="bf16")
    assert size_bytes(bf16, "reduce_scatter", 3) == 168 * 3 * 2  # 512 elements: 170 per rank, to 16 B: 168


def nccl_tests_bytes(size_bytes_requested: int, elt_size: int, nranks: int) -> int:
    """nccl-tests' all-gather / reduce-scatter S: count = size / eltSize; base = (count/nranks) &
    -(16/eltSize); S = base x nranks x eltSize (src/all_gather.cu, src/reduce_scatter.cu)."""
    count = size_bytes_requested // elt_size
    base = (count // nranks) & -(16 // elt_size)
    return base * nranks * elt_size


@pytest.mark.parametrize("n", [2, 3, 6, 8, 24])
@pytest.mark.parametrize("op", ["all_gather", "reduce_scatter"])
@pytest.mark.parametrize(("size_kib", "dtype"), [(32, "fp32"), (32, "bf16"), (1.5, "fp16"), (131072, "fp32"),
                                                 (7.3, "fp32")])  # fmt: skip
def test_sizes_match_nccl_tests_for_any_rank_count(n, op, size_kib, dtype):
    p = CollectiveParams(size_kib=size_kib, dtype=dtype)
    elt = {"fp32": 4, "bf16": 2, "fp16": 2}[dtype]
    assert size_bytes(p, op, n) == nccl_tests_bytes(int(size_kib * 1024), elt, n)


def test_the_issue_example_24_ranks_32_kib():
    assert size_bytes(CollectiveParams(size_kib=32), "all_gather", 24) == 32_640  # not 32,736


def test_labels_and_registry():
    ar = workloads.get("all_reduce")
    assert ar.family == "collective" and ar.lockstep(ar.parse({}))
    assert ar.label(ar.parse({"size_kib": 32})) == "32 KiB fp32"
    assert ar.label(ar.parse({"size_kib": 4194304})) == "4 GiB fp32"
    assert ar.label(ar.parse({"size_kib": 1024, "corrupt_rank": 1})) == "1 MiB fp32 corrupt rank 1"
    assert {"all_gather", "reduce_scatter"} <= set(workloads.REGISTRY)


def test_one_process_cannot_run_a_collective():
    ag = workloads.get("all_gather")
    why = ag.unsupported_reason(ag.parse({}), cpu_device())
    assert why == "a collective needs 2 or more ranks: launch with tokenbench run --nproc N, or torchrun"


def by_hand(rank: int, i: int, seed: int) -> int:
    """The check's input value, in Python integers (the workload computes it in torch int64)."""
    p = 2**31 - 1
    h = (i + (rank * 1_000_003 + seed) % p) % p
    h = h * 48271 % p
    h = h * 48271 % p
    return (h >> 8) % 4 + 1


def test_check_inputs_are_small_integers_of_each_rank_its_own():
    x = {r: pattern(r, 0, 4096, seed=7, device=torch.device("cpu")) for r in range(8)}
    assert set(x[0].unique().tolist()) == {1.0, 2.0, 3.0, 4.0}  # never zero, every value used
    assert [x[3][i].item() for i in (0, 1, 4095)] == [by_hand(3, i, 7) for i in (0, 1, 4095)]
    assert not torch.equal(x[0], x[4])  # ranks 0 and 4 differ: a swapped contribution shows
    assert torch.equal(pattern(5, 100, 10, 7, torch.device("cpu")), x[5][100:110])  # any slice, same values


@pytest.mark.parametrize(("dtype", "n", "is_exact"), [("bf16", 64, True), ("bf16", 65, False), ("fp16", 512, True),
                                                       ("fp16", 513, False), ("fp32", 4096, True)])  # fmt: skip
def test_sums_are_exact_up_to_the_dtype_bound(dtype, n, is_exact):
    assert exact("all_reduce", dtype, n) is is_exact and exact("all_gather", dtype, n)
    top = torch.tensor(float(4 * n))  # the largest sum the check can make on n ranks
    as_dtype = top.to({"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]).item()
    assert (as_dtype == top.item()) or not is_exact


def test_pieces_split_an_output_range_over_the_ranks_chunks():
    # 3 ranks of 4 elements: output 2..9 is rank 0's 2..4, rank 1's 0..4, rank 2's 0..2
    assert _pieces(2, 8, 4, 3) == [(0, 2, 4), (1, 0, 4), (2, 0, 2)]


@pytest.mark.parametrize("op", ["all_reduce", "all_gather", "reduce_scatter"])
def test_expected_values_by_hand_on_three_ranks(op):
    m = 6 if op == "all_reduce" else 2
    case = CollectiveCase(op, CollectiveParams(), cpu_device(), rank=1, n=3, m=m, send=torch.zeros(1), recv=None,
                          seed=11)  # fmt: skip
    got = case._expected(0, 6 if op != "reduce_scatter" else 2).tolist()
    if op == "all_reduce":  # element i: the sum over ranks of their values at i
        assert got == [sum(by_hand(k, i, 11) for k in range(3)) for i in range(6)]
    elif op == "all_gather":  # chunk k: rank k's own elements k*m .. k*m + m
        assert got == [by_hand(k, k * 2 + j, 11) for k in range(3) for j in range(2)]
    else:  # rank 1 keeps chunk 1 of the sum
        assert got == [sum(by_hand(k, 2 + j, 11) for k in range(3)) for j in range(2)]


def test_fault_knobs_name_a_real_rank():
    ar = workloads.get("all_reduce")
    assert ar.label(ar.parse({"size_kib": 0.5, "raise_rank": 1})) == "512 B fp32 raise on rank 1"
