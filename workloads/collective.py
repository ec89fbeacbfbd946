"""Collectives across ranks: all-reduce, all-gather and reduce-scatter, by the nccl-tests definitions.

Every rank times its own calls (the ranks agree on every count, so they make the same calls).
`size` is S in nccl-tests' terms: the all-reduce buffer, the all-gather output (each rank sends
S / n) and the reduce-scatter input (each rank keeps S / n). As nccl-tests does (src/all_gather.cu,
src/reduce_scatter.cu), each rank's share is rounded down to a multiple of 16 bytes, (count / n) &
-(16 / element size); the all-reduce buffer to whole elements. Then, with t the median time of
one call and n ranks:

    algbw = S / t                        (GB/s, 1e9 bytes)
    busbw = algbw x factor               all-reduce 2(n-1)/n; all-gather, reduce-scatter (n-1)/n

busbw is the figure to hold against the links' bandwidth: it does not depend on n.

Timed calls run on buffers of zeros, so repeated in-place sums stay finite. The check runs
once on fresh values: element i of rank r's input is an integer 1..4 hashed from (i, r, seed),
computed with integer arithmetic on the device, so every rank can work out every other rank's
input (whatever its GPU model) and so the exact result; each rank's pattern is its own, so a
contribution dropped, doubled or taken from the wrong rank shows. The check counts wrong values
(nccl-tests' "#wrong"); any wrong value fails the record. Sums are exact while 4 x ranks stays
under the dtype's exact-integer bound (bf16: 64 ranks, fp16: 512); beyond it the check allows the
rounding of n additions and says so. Two fault knobs, never part of a suite, prove the harness:
`corrupt_rank` adds 1 to one received value on that rank after the collective, as a faulty GPU
or link would, and `raise_rank` fails that rank while it sets up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.distributed as dist
from pydantic import Field

from bench.device.base import Device
from workloads.base import CheckResult, Counts, Params, Workload, torch_dtype

CollDtype = Literal["fp32", "bf16", "fp16"]
# Integers up to these are exact in the dtype: the check's sums are exact while they stay under.
EXACT_UP_TO = {"fp32": 2**24, "bf16": 2**8, "fp16": 2**11}
MANTISSA_BITS = {"fp32": 23, "bf16": 7, "fp16": 10}
VALUE_MAX = 4  # check inputs are integers 1..VALUE_MAX
CHUNK = 2**24  # elements the check generates and compares at a time (bounded temporaries)
_PRIME = 2_147_483_647  # 2^31 - 1: a Lehmer hash whose products fit int64
_RANK_STRIDE = 1_000_003


class CollectiveParams(Params):
    size_kib: float = Field(1024.0, gt=0, description="S: all-reduce buffer, all-gather output, reduce-scatter input")
    dtype: CollDtype = Field("fp32", description="element type (the sum is done in it)")
    corrupt_rank: int | None = Field(None, ge=0, description="test the check: corrupt one value on this rank")
    raise_rank: int | None = Field(None, ge=0, description="test the harness: fail this rank while setting up")


def busbw_factor(op: str, n: int) -> float:
    """nccl-tests' bus bandwidth factor for `op` on n ranks."""
    if n < 1:
        raise ValueError(f"world size must be at least 1, got {n}")
    return 2 * (n - 1) / n if op == "all_reduce" else (n - 1) / n


ALIGN_BYTES = 16  # nccl-tests rounds each rank's share of an all-gather or reduce-scatter to this


def elements_per_rank(p: CollectiveParams, op: str, n: int) -> int:
    """Elements each rank contributes to S: all-reduce the whole buffer in whole elements; all-gather
    and reduce-scatter (count / n) rounded down to 16 bytes, nccl-tests' (count/nranks) & -(16/eltSize)."""
    elem = torch_dtype(p.dtype).itemsize
    total = int(p.size_kib * 1024) // elem
    if op == "all_reduce":
        return total
    share, align = total // n, ALIGN_BYTES // elem
    return share - share % align


def size_bytes(p: CollectiveParams, op: str, n: int) -> int:
    """S after each rank's share is rounded down as nccl-tests rounds it."""
    elem = torch_dtype(p.dtype).itemsize
    m = elements_per_rank(p, op, n)
    return m * elem if op == "all_reduce" else m * n * elem


def world() -> tuple[int, int]:
    """(rank, world size) of the default process group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def pattern(rank: int, start: int, count: int, seed: int, device: torch.device) -> torch.Tensor:
    """Rank `rank`'s check input for elements start..start+count: integers 1..4 (float32), hashed
    from (element, rank, seed) in int64 on `device`, so the same on every GPU model and rank."""
    idx = torch.arange(start, start + count, dtype=torch.int64, device=device)
    h = (idx + (rank * _RANK_STRIDE + seed) % _PRIME) % _PRIME
    h = (h * 48271) % _PRIME
    h = (h * 48271) % _PRIME
    return ((h >> 8) % VALUE_MAX + 1).to(torch.float32)


def exact(op: str, dtype: str, n: int) -> bool:
    """True when every result the check expects is an integer the dtype holds exactly."""
    return op == "all_gather" or VALUE_MAX * n <= EXACT_UP_TO[dtype]


# nccl-tests-style out-of-place calls where torch has them under their newer names.
# (None on a torch built without torch.distributed, where no collective gets as far as a call.)
_all_gather: Callable[..., object] | None = getattr(dist, "all_gather_single", None) or getattr(
    dist, "all_gather_into_tensor", None
)
_reduce_scatter: Callable[..., object] | None = getattr(dist, "reduce_scatter_single", None) or getattr(
    dist, "reduce_scatter_tensor", None
)


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
    seed: int  # the check's: the same on every rank
    kernel: str | None = None

    def call(self, send: torch.Tensor, recv: torch.Tensor | None) -> None:
        if self.op == "all_reduce":
            dist.all_reduce(send)
        elif self.op == "all_gather":
            assert _all_gather is not None
            _all_gather(recv, send)
        else:
            assert _reduce_scatter is not None
            _reduce_scatter(recv, send)

    def run(self) -> None:
        self.call(self.send, self.recv)

    def extra(self, timing: Any, peaks: dict[str, float | None]) -> dict[str, Any]:
        s = size_bytes(self.p, self.op, self.n)
        algbw = s / timing.summary.median / 1e9
        factor = busbw_factor(self.op, self.n)
        return {"size_bytes": s, "algbw_gb_per_s": algbw, "busbw_factor": factor, "busbw_gb_per_s": algbw * factor}

    def _input(self, rank: int, start: int, count: int) -> torch.Tensor:
        return pattern(rank, start, count, self.seed, self.device.torch_device)

    def _expected(self, start: int, count: int) -> torch.Tensor:
        """The exact result on this rank for its output elements start..start+count."""
        n, m = self.n, self.m
        if self.op == "all_gather":  # output chunk k is rank k's input, elements k*m..(k+1)*m
            return torch.cat([self._input(k, k * m + a, b - a) for k, a, b in _pieces(start, count, m, n)])
        offset = self.rank * m if self.op == "reduce_scatter" else 0  # rank r keeps chunk r of the sum
        total = torch.zeros(count, dtype=torch.float32, device=self.device.torch_device)
        for k in range(n):
            total += self._input(k, offset + start, count)
        return total

    def _fill_send(self, dtype: torch.dtype) -> torch.Tensor:
        r, m = self.rank, self.m
        send = torch.empty_like(self.send, dtype=dtype)
        base = r * m if self.op == "all_gather" else 0
        for a in range(0, send.numel(), CHUNK):
            b = min(a + CHUNK, send.numel())
            send[a:b] = self._input(r, base + a, b - a).to(dtype)
        return send

    def check(self) -> CheckResult:
        dtype, n, r = torch_dtype(self.p.dtype), self.n, self.rank
        send = self._fill_send(dtype)
        recv = None if self.recv is None else torch.full_like(self.recv, -1)
        self.call(send, recv)
        got = (send if recv is None else recv).view(-1)
        if self.p.corrupt_rank == r:
            got[got.numel() // 2] += 1
        is_exact = exact(self.op, self.p.dtype, n)
        tolerance = 0.0 if is_exact else (n - 1) * 2.0 ** -(MANTISSA_BITS[self.p.dtype] + 1)
        wrong = 0
        for a in range(0, got.numel(), CHUNK):
            b = min(a + CHUNK, got.numel())
            want = self._expected(a, b - a)
            wrong += int(((got[a:b].float() - want).abs() > tolerance * want).sum().item())
        how = "exact integer sums" if is_exact else f"sums of {n} values, relative tolerance {tolerance:.2g}"
        detail = f"{wrong} of {got.numel()} values wrong on rank {r} of {n} ({how})"
        return CheckResult(wrong == 0, float(wrong), tolerance, detail, {"wrong_values": wrong})


def _pieces(start: int, count: int, m: int, n: int) -> list[tuple[int, int, int]]:
    """(rank k, from, to) within rank k's chunk of m elements, covering output elements start..start+count."""
    out = []
    for k in range(n):
        a, b = max(start, k * m), min(start + count, (k + 1) * m)
        if a < b:
            out.append((k, a - k * m, b - k * m))
    return out


class Collective(Workload[CollectiveParams]):
    op: ClassVar[str]
    family = "collective"
    Params = CollectiveParams
    version = 2  # 2: all-gather and reduce-scatter shares rounded to 16 bytes, as nccl-tests does

    def label(self, p: CollectiveParams) -> str:
        size = p.size_kib * 1024
        unit, scale = next((u, k) for u, k in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10), ("B", 1)) if size >= k)
        faults = [f"corrupt rank {p.corrupt_rank}"] * (p.corrupt_rank is not None)
        faults += [f"raise on rank {p.raise_rank}"] * (p.raise_rank is not None)
        return " ".join([f"{size / scale:g} {unit} {p.dtype}", *faults])

    def lockstep(self, p: CollectiveParams) -> bool:
        return True

    def peak_dtype(self, p: CollectiveParams, device: Device) -> str | None:
        return None  # moves data: no FLOP/s peak, and HBM bandwidth is not the roof of a link

    def unsupported_reason(self, p: CollectiveParams, device: Device) -> str | None:
        _, n = world()
        if n < 2:
            return "a collective needs 2 or more ranks: launch with tokenbench run --nproc N, or torchrun"
        if elements_per_rank(p, self.op, n) < 1:
            return f"{self.label(p)} is smaller than one element per rank on {n} ranks"
        for knob in ("corrupt_rank", "raise_rank"):
            if getattr(p, knob) is not None and getattr(p, knob) >= n:
                return f"{knob}={getattr(p, knob)} is not a rank of this {n}-rank job"
        return device.unsupported_dtype_reason(p.dtype)

    def counts(self, p: CollectiveParams, device: Device | None = None) -> Counts:
        return Counts()  # algbw and busbw come from the case, which knows the world size

    def memory_bytes(self, p: CollectiveParams, device: Device | None = None) -> int:
        _, n = world()
        s = size_bytes(p, self.op, max(n, 1))
        # the timed send and receive, the check's own pair, and its chunk temporaries (int64 hash, fp32)
        return 2 * 2 * s + CHUNK * (3 * 8 + 3 * 4)

    def record_fields(self, p: CollectiveParams, device: Device) -> dict[str, Any]:
        backend = dist.get_backend() if dist.is_available() and dist.is_initialized() else None
        return {"backend": backend}

    @contextlib.contextmanager
    def prepare(self, p: CollectiveParams, device: Device, seed: int) -> Iterator[CollectiveCase]:
        rank, n = world()
        if p.raise_rank == rank:
            raise RuntimeError(f"raise_rank={rank}: this rank fails while setting up, as asked")
        dtype, dev = torch_dtype(p.dtype), device.torch_device
        m = elements_per_rank(p, self.op, n)
        total = m if self.op == "all_reduce" else m * n
        send_n = m if self.op != "reduce_scatter" else total
        recv_n = {"all_reduce": 0, "all_gather": total, "reduce_scatter": m}[self.op]
        send = torch.zeros(send_n, dtype=dtype, device=dev)
        recv = torch.zeros(recv_n, dtype=dtype, device=dev) if recv_n else None
        # The check's seed is the entry's, the same on every rank (the run's seed + seq).
        yield CollectiveCase(self.op, p, device, rank, n, m, send, recv, seed, kernel=f"{dist.get_backend()} {self.op}")


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
