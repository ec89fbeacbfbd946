"""Collectives across ranks: all-reduce, all-gather and reduce-scatter, by the nccl-tests definitions.

Every rank times its own calls (the ranks agree on every count, so they make the same calls).
`size` is S in nccl-tests' terms: the all-reduce buffer, the all-gather output (each rank sends
S / n) and the reduce-scatter input (each rank keeps S / n), rounded down to a whole number of
elements per rank. Then, with t the median time of one call and n ranks:

    algbw = S / t                        (GB/s, 1e9 bytes)
    busbw = algbw x factor               all-reduce 2(n-1)/n; all-gather, reduce-scatter (n-1)/n

busbw is the figure to hold against the links' bandwidth: it does not depend on n.

Timed calls run on buffers of zeros, so repeated in-place sums stay finite. The check runs
once on fresh values: rank r holds small integers drawn from a seed every rank shares, plus
r, so each rank can work out every other rank's input and the exact result. It counts wrong
values (nccl-tests' "#wrong"); any wrong value fails the record. `corrupt_rank` adds 1 to one
received value on that rank after the collective, as a faulty GPU or link would: it proves the
check catches a bad rank, and is never part of a suite.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.distributed as dist
from pydantic import Field

from bench.device import DTYPES, Device
from workloads.base import CheckResult, Counts, Params, Workload

CollDtype = Literal["fp32", "bf16", "fp16"]
# Integers below these are exact in the dtype: the check's sums must stay under them.
EXACT_UP_TO = {"fp32": 2**24, "bf16": 2**8, "fp16": 2**11}
BASE_MAX = 3  # inputs are base values 1..BASE_MAX plus (rank mod RANK_SPREAD)
RANK_SPREAD = 4


class CollectiveParams(Params):
    size_kib: float = Field(1024.0, gt=0, description="S: all-reduce buffer, all-gather output, reduce-scatter input")
    dtype: CollDtype = Field("fp32", description="element type (the sum is done in it)")
    corrupt_rank: int | None = Field(None, ge=0, description="test the check: corrupt one value on this rank")


def busbw_factor(op: str, n: int) -> float:
    """nccl-tests' bus bandwidth factor for `op` on n ranks."""
    if n < 1:
        raise ValueError(f"world size must be at least 1, got {n}")
    return 2 * (n - 1) / n if op == "all_reduce" else (n - 1) / n


def elements_per_rank(p: CollectiveParams, op: str, n: int) -> int:
    """Elements each rank contributes to S (all-reduce: the whole buffer), whole elements only."""
    elem = DTYPES[p.dtype].itemsize
    total = int(p.size_kib * 1024) // elem
    return total if op == "all_reduce" else total // n


def size_bytes(p: CollectiveParams, op: str, n: int) -> int:
    """S after rounding down to whole elements per rank (nccl-tests rounds the same way)."""
    elem = DTYPES[p.dtype].itemsize
    m = elements_per_rank(p, op, n)
    return m * elem if op == "all_reduce" else m * n * elem


def world() -> tuple[int, int]:
    """(rank, world size) of the default process group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def rank_input(base: torch.Tensor, rank: int, dtype: torch.dtype) -> torch.Tensor:
    """What `rank` puts into the collective in the check: the shared base plus its rank offset."""
    return (base + (rank % RANK_SPREAD)).to(dtype)


# nccl-tests-style out-of-place calls where torch has them under their newer names.
_all_gather = getattr(dist, "all_gather_single", None) or getattr(dist, "all_gather_into_tensor", None)
_reduce_scatter = getattr(dist, "reduce_scatter_single", None) or getattr(dist, "reduce_scatter_tensor", None)


@dataclass
class CollectiveCase:
    op: str
    p: CollectiveParams
    device: Device
    rank: int
    n: int
    m: int  # elements each rank sends (all-reduce: the buffer)
    send: torch.Tensor
    recv: torch.Tensor | None
    base: torch.Tensor  # the check's shared values, one per element of S
    kernel: str | None = None

    def call(self, send: torch.Tensor, recv: torch.Tensor | None) -> None:
        if self.op == "all_reduce":
            dist.all_reduce(send)
        elif self.op == "all_gather":
            _all_gather(recv, send)
        else:
            _reduce_scatter(recv, send)

    def run(self) -> None:
        self.call(self.send, self.recv)

    def extra(self, timing: Any, peaks: dict[str, float | None]) -> dict[str, Any]:
        s = size_bytes(self.p, self.op, self.n)
        algbw = s / timing.summary.median / 1e9
        factor = busbw_factor(self.op, self.n)
        return {"size_bytes": s, "algbw_gb_per_s": algbw, "busbw_factor": factor, "busbw_gb_per_s": algbw * factor}

    def _expected(self) -> torch.Tensor:
        """The exact result on this rank, from the shared base (every rank can compute every input)."""
        n, m, r = self.n, self.m, self.rank
        offsets = sum(k % RANK_SPREAD for k in range(n))
        if self.op == "all_reduce":
            return self.base * n + offsets
        if self.op == "all_gather":
            chunks = [self.base[k * m : (k + 1) * m] + (k % RANK_SPREAD) for k in range(n)]
            return torch.cat(chunks)
        return self.base[r * m : (r + 1) * m] * n + offsets  # reduce-scatter: rank r keeps chunk r of the sum

    def check(self) -> CheckResult:
        dtype = DTYPES[self.p.dtype]
        n, m, r = self.n, self.m, self.rank
        if self.op == "all_reduce":
            send, recv = rank_input(self.base, r, dtype), None
        elif self.op == "all_gather":
            send, recv = rank_input(self.base[r * m : (r + 1) * m], r, dtype), torch.full_like(self.recv, -1)
        else:
            send, recv = rank_input(self.base, r, dtype), torch.full_like(self.recv, -1)
        self.call(send, recv)
        got = send if recv is None else recv
        if self.p.corrupt_rank == r:
            got.view(-1)[got.numel() // 2] += 1
        wrong = int((got.float() != self._expected()).sum().item())
        detail = f"{wrong} of {got.numel()} values wrong on rank {r} of {n} (exact small-integer sums)"
        return CheckResult(wrong == 0, float(wrong), 0.0, detail, {"wrong_values": wrong})


class Collective(Workload):
    op: ClassVar[str]
    family = "collective"
    Params = CollectiveParams
    version = 1

    def label(self, p: CollectiveParams) -> str:
        size = p.size_kib * 1024
        for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if size >= scale:
                text = f"{size / scale:g} {unit}"
                break
        return f"{text} {p.dtype}" + (f" corrupt rank {p.corrupt_rank}" if p.corrupt_rank is not None else "")

    def lockstep(self, p: Params) -> bool:
        return True

    def peak_dtype(self, p: Params, device: Device) -> str | None:
        return None  # moves data: no FLOP/s peak, and HBM bandwidth is not the roof of a link

    def unsupported_reason(self, p: CollectiveParams, device: Device) -> str | None:
        _, n = world()
        if n < 2:
            return "a collective needs 2 or more ranks: launch with tokenbench run --nproc N, or torchrun"
        if elements_per_rank(p, self.op, n) < 1:
            return f"{self.label(p)} is smaller than one element per rank on {n} ranks"
        if BASE_MAX * n + sum(k % RANK_SPREAD for k in range(n)) >= EXACT_UP_TO[p.dtype]:
            return f"the exact check needs sums under {EXACT_UP_TO[p.dtype]} in {p.dtype}; {n} ranks exceed it"
        return device.unsupported_dtype_reason(p.dtype)

    def counts(self, p: CollectiveParams, device: Device | None = None) -> Counts:
        return Counts()  # algbw and busbw come from the case, which knows the world size

    def memory_bytes(self, p: CollectiveParams, device: Device | None = None) -> int:
        _, n = world()
        elem = DTYPES[p.dtype].itemsize
        s = size_bytes(p, self.op, max(n, 1))
        # timed send + receive, the check's base (fp32), its input, output and the expected values
        return 2 * s + 4 * s + 2 * s + 4 * s + elem

    def record_fields(self, p: CollectiveParams, device: Device) -> dict[str, Any]:
        backend = dist.get_backend() if dist.is_available() and dist.is_initialized() else None
        return {"backend": backend}

    @contextlib.contextmanager
    def prepare(self, p: CollectiveParams, device: Device, seed: int) -> Iterator[CollectiveCase]:
        rank, n = world()
        dtype, dev = DTYPES[p.dtype], device.torch_device
        m = elements_per_rank(p, self.op, n)
        total = m if self.op == "all_reduce" else m * n
        # Every rank draws the same base from the same seed: the seed is the run's, not the rank's.
        gen = torch.Generator(device=dev).manual_seed(seed)
        base = torch.randint(1, BASE_MAX + 1, (total,), generator=gen, device=dev).float()
        send_n = m if self.op != "reduce_scatter" else total
        recv_n = {"all_reduce": 0, "all_gather": total, "reduce_scatter": m}[self.op]
        send = torch.zeros(send_n, dtype=dtype, device=dev)
        recv = torch.zeros(recv_n, dtype=dtype, device=dev) if recv_n else None
        yield CollectiveCase(self.op, p, device, rank, n, m, send, recv, base, kernel=f"{dist.get_backend()} {self.op}")


class AllReduce(Collective):
    id = "all_reduce"
    op = "all_reduce"
    description = "all-reduce (sum) across ranks; algbw and busbw by the nccl-tests definitions, wrong values counted"


class AllGather(Collective):
    id = "all_gather"
    op = "all_gather"
    description = "all-gather across ranks; algbw and busbw by the nccl-tests definitions, wrong values counted"


class ReduceScatter(Collective):
    id = "reduce_scatter"
    op = "reduce_scatter"
    description = "reduce-scatter (sum) across ranks; algbw and busbw by the nccl-tests definitions, wrong values"
