"""Collectives without processes: nccl-tests factors and sizes by hand, the exact check's values."""

from __future__ import annotations

import pytest
import torch

import workloads
from bench.device import cpu_device
from workloads.collective import (
    BASE_MAX,
    EXACT_UP_TO,
    RANK_SPREAD,
    CollectiveCase,
    CollectiveParams,
    busbw_factor,
    elements_per_rank,
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
    assert size_bytes(bf16, "reduce_scatter", 3) == 170 * 3 * 2  # 512 elements, 170 per rank


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


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16"])
def test_the_check_sums_are_exact_in_the_dtype_up_to_the_limit(dtype):
    """The largest sum the check makes on n ranks stays under the dtype's exact-integer bound."""
    n = max(k for k in range(2, 4096) if BASE_MAX * k + sum(r % RANK_SPREAD for r in range(k)) < EXACT_UP_TO[dtype])
    top = torch.tensor(float(BASE_MAX * n + sum(r % RANK_SPREAD for r in range(n))))
    assert top.to(getattr(torch, {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[dtype])).item() == top


@pytest.mark.parametrize("op", ["all_reduce", "all_gather", "reduce_scatter"])
def test_expected_values_by_hand_on_three_ranks(op):
    base = torch.tensor([1.0, 2.0, 3.0, 1.0, 2.0, 3.0])
    case = CollectiveCase(op, CollectiveParams(), cpu_device(), rank=1, n=3, m=6 if op == "all_reduce" else 2,
                          send=torch.zeros(1), recv=None, base=base)  # fmt: skip
    # rank k adds k: the sum over 3 ranks adds 0 + 1 + 2 = 3 to three times the base
    if op == "all_reduce":
        assert case._expected().tolist() == [6.0, 9.0, 12.0, 6.0, 9.0, 12.0]
    elif op == "all_gather":  # rank k's chunk k of the base, plus k
        assert case._expected().tolist() == [1.0, 2.0, 4.0, 2.0, 4.0, 5.0]
    else:  # rank 1 keeps chunk 1 of the sum
        assert case._expected().tolist() == [12.0, 6.0]
