"""Bounds on the run's command-line inputs that the CLI checks before anything runs: the seed, --nproc."""

from __future__ import annotations

import pytest

from bench.measure import limits


@pytest.mark.parametrize("seed", [0, 1, 1234, 2**32 - 1])
def test_a_seed_in_range_is_accepted(seed):
    assert limits.seed_refusal(seed) is None and limits.seed_refusal(None) is None


@pytest.mark.parametrize("seed", [-1, 2**32, 99999999999999999999999])
def test_a_seed_out_of_range_is_one_line(seed):
    assert limits.seed_refusal(seed) == f"--seed {seed}: a seed is 0 to 4294967295 (2^32 - 1)"


def test_every_seed_in_range_seeds_torch_for_every_entry_and_rank():
    import torch

    # the largest seed a run derives: the run's seed + the entry's seq + 1 + 1000 x rank (train), far in range
    torch.Generator().manual_seed(limits.MAX_SEED + 10**6 + 1 + 1000 * 10**5)


def test_nproc_on_the_cpu_is_bounded_by_the_usable_cpus():
    assert limits.nproc_refusal(2, "cpu", cpus=2) is None
    assert limits.nproc_refusal(4, "cpu", cpus=1) is None  # a few ranks a core: the several-process tests
    assert limits.nproc_refusal(8, "cpu", cpus=2) is None
    assert limits.nproc_refusal(1000, "cpu", cpus=2) == (
        "--nproc 1000: this process may use 2 CPUs; run at most 8 processes on the CPU"
    )
    assert limits.nproc_refusal(5, "cpu", cpus=1) == (
        "--nproc 5: this process may use 1 CPU; run at most 4 processes on the CPU"
    )


def test_nproc_on_gpus_is_bounded_by_the_visible_gpus():
    assert limits.nproc_refusal(8, "cuda", gpus=8) is None
    assert limits.nproc_refusal(9, "cuda", gpus=8) == "--nproc 9: torch sees 8 GPUs; one process per GPU"


def test_nproc_defaults_to_what_this_machine_has():
    from bench.measure.ranks import usable_cpus

    assert limits.nproc_refusal(4 * usable_cpus(), "cpu") is None
    assert limits.nproc_refusal(4 * usable_cpus() + 1, "cpu") is not None
