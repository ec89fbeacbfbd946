"""GEMM: C (m x n) = A (m x k) @ B (k x n), the matmul under every LLM layer.

fp32 runs IEEE fp32 math, tf32 runs the same storage on TF32 tensor cores, fp16 and bf16 run
natively, and fp8 (e4m3, per-tensor scales of 1, bf16 output) goes through torch._scaled_mm,
which wants B column-major. The output is checked on fresh standard-normal inputs against the
same (rounded) inputs multiplied in fp32 (fp64 for the fp32/tf32 cases).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from pydantic import Field

from bench.device.base import DTYPES, Device
from workloads.base import (
    CheckResult,
    Counts,
    Dtype,
    Params,
    Workload,
    element_size,
    float32_matmul_precision,
    normalised_max_error,
    random_normal,
)

# Largest max|C - C_ref| / rms(C_ref) a correct kernel shows on standard-normal inputs. Output
# rounding dominates: at most half an ulp, i.e. u = 2^-8 relative for bf16 (8-bit significand)
# and 2^-11 for fp16, of an output up to ~5.7 sigma, so bf16 <= 0.022 and fp16 <= 0.003 (cuBLAS
# may also reduce fp16/bf16 partial sums in reduced precision, hence the margin); TF32 rounds the
# inputs to 11 significant bits. Each tolerance sits well above that and far below the O(1)
# error of a wrong result or a flipped exponent bit.
TOLERANCE = {"fp32": 1e-4, "tf32": 2e-2, "fp16": 2e-2, "bf16": 4e-2, "fp8": 4e-2}


class GemmParams(Params):
    m: int = Field(4096, gt=0, description="rows of A and C (tokens in an LLM layer)")
    n: int = Field(4096, gt=0, description="columns of B and C (output features)")
    k: int = Field(4096, gt=0, description="reduction size (input features)")
    dtype: Dtype = Field("bf16", description="fp32 | tf32 | fp16 | bf16 | fp8")
    corrupt: bool | None = Field(None, description="test the check: spoil one output element, as silent corruption")


def _out_dtype(dtype: str) -> str:
    return "bf16" if dtype == "fp8" else ("fp32" if dtype == "tf32" else dtype)


def _ref_dtype(dtype: str) -> torch.dtype:
    return torch.float64 if dtype in ("fp32", "tf32") else torch.float32


@dataclass
class GemmCase:
    p: GemmParams
    device: Device
    generator: torch.Generator
    a: torch.Tensor
    b: torch.Tensor
    out: torch.Tensor
    scale: torch.Tensor | None = None  # fp8 per-tensor scale (1.0), made once, outside the timed call
    kernel: str | None = None

    def _mm(self, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        if self.scale is not None:
            s = self.scale
            return torch._scaled_mm(a, b, scale_a=s, scale_b=s, out_dtype=torch.bfloat16, out=out)
        return torch.mm(a, b, out=out)

    def run(self) -> torch.Tensor:
        return self._mm(self.a, self.b, self.out)

    def check(self) -> CheckResult:
        a, b = _inputs(self.p, self.device, self.generator)
        out = torch.empty_like(self.out)
        self._mm(a, b, out)
        if self.p.corrupt:  # one element off by 16 rms: far past every tolerance, as a flipped high bit would be
            out.view(-1)[0] += 16 * out.float().pow(2).mean().sqrt().to(out.dtype)
        ref_dtype = _ref_dtype(self.p.dtype)
        with float32_matmul_precision("fp32"):  # the reference never uses TF32
            ref = a.to(ref_dtype) @ b.to(ref_dtype)
        err = normalised_max_error(out, ref)
        tol = TOLERANCE[self.p.dtype]
        return CheckResult(err <= tol, err, tol, f"max|C-C_ref|/rms(C_ref), reference in {ref_dtype}")


def _inputs(p: GemmParams, device: Device, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    a = random_normal((p.m, p.k), p.dtype, device, gen)
    if p.dtype == "fp8":  # _scaled_mm needs B column-major: allocate B^T row-major, view as B
        return a, random_normal((p.n, p.k), p.dtype, device, gen).t()
    return a, random_normal((p.k, p.n), p.dtype, device, gen)


class Gemm(Workload[GemmParams]):
    id = "gemm"
    version = 1
    family = "gemm"
    description = "dense matmul C = A @ B at LLM layer shapes; output checked against fp32/fp64"
    Params = GemmParams

    def label(self, p: GemmParams) -> str:
        return f"{p.m}x{p.n}x{p.k} {p.dtype}" + (" corrupt" if p.corrupt else "")

    def unsupported_reason(self, p: GemmParams, device: Device) -> str | None:
        reason = super().unsupported_reason(p, device)
        if reason is None and p.dtype == "fp8" and (p.n % 16 or p.k % 16):
            reason = f"fp8 matmul (torch._scaled_mm) needs n and k divisible by 16 (got n={p.n}, k={p.k})"
        return reason

    def counts(self, p: GemmParams, device: Device | None = None) -> Counts:
        # 2mnk: one multiply and one add per (i, j, l); bytes: read A and B, write C once.
        flops = 2.0 * p.m * p.n * p.k
        size = element_size(p.dtype)
        nbytes = (p.m * p.k + p.k * p.n) * size + p.m * p.n * element_size(_out_dtype(p.dtype))
        return Counts(flops=flops, bytes=float(nbytes))

    def memory_bytes(self, p: GemmParams, device: Device | None = None) -> int:
        size, out_size = element_size(p.dtype), element_size(_out_dtype(p.dtype))
        ref_size = torch.empty((), dtype=_ref_dtype(p.dtype)).element_size()
        timed = (p.m * p.k + p.k * p.n) * size + p.m * p.n * out_size
        # check: fresh A, B, C; the inputs upcast; the reference, the difference and its mask
        check = timed + (p.m * p.k + p.k * p.n + 2 * p.m * p.n) * ref_size + p.m * p.n
        return timed + check

    @contextlib.contextmanager
    def prepare(self, p: GemmParams, device: Device, seed: int) -> Iterator[GemmCase]:
        gen = torch.Generator(device=device.torch_device).manual_seed(seed)
        with float32_matmul_precision(p.dtype):
            a, b = _inputs(p, device, gen)
            out = torch.empty((p.m, p.n), dtype=DTYPES[_out_dtype(p.dtype)], device=device.torch_device)
            scale = torch.ones((), dtype=torch.float32, device=device.torch_device) if p.dtype == "fp8" else None
            kernel = "torch._scaled_mm" if scale is not None else "torch.mm"
            yield GemmCase(p, device, gen, a, b, out, scale, kernel)
