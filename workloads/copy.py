"""Memory bandwidth: dst.copy_(src) of a large buffer, counting bytes read plus written.

This is the device-to-device copy that STREAM calls "copy" and that vendor bandwidth figures
are compared against: each byte is read once and written once, so bytes moved = 2 x size.
The check copies fresh random data and demands a bit-exact result.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from pydantic import Field

from bench.device.base import Device
from workloads.base import CheckResult, Counts, Params, Workload

_ELEM_BYTES = 4  # float32 elements: vectorised loads on every device


class CopyParams(Params):
    size_mib: float = Field(1024.0, gt=0, description="size of the buffer copied, MiB (2^20 bytes)")


def n_elements(p: CopyParams) -> int:
    return max(1, int(p.size_mib * 2**20) // _ELEM_BYTES)


@dataclass
class CopyCase:
    device: Device
    generator: torch.Generator
    src: torch.Tensor
    dst: torch.Tensor
    kernel: str | None = "Tensor.copy_"

    def run(self) -> torch.Tensor:
        return self.dst.copy_(self.src)

    def check(self) -> CheckResult:
        self.src.normal_(generator=self.generator)
        self.dst.fill_(float("nan"))  # a copy that writes nothing cannot pass
        self.dst.copy_(self.src)
        wrong = int((self.dst != self.src).sum().item())
        return CheckResult(wrong == 0, float(wrong), 0.0, "elements differing after copy (bit-exact)")


class Copy(Workload[CopyParams]):
    id = "copy"
    version = 1
    family = "memory"
    description = "device memory bandwidth: copy a buffer; bytes = read + written"
    Params = CopyParams

    def label(self, p: CopyParams) -> str:
        return f"{p.size_mib:g} MiB"

    def counts(self, p: CopyParams, device: Device | None = None) -> Counts:
        return Counts(bytes=2.0 * n_elements(p) * _ELEM_BYTES)

    def memory_bytes(self, p: CopyParams, device: Device | None = None) -> int:
        return 2 * n_elements(p) * _ELEM_BYTES + n_elements(p)  # + the check's boolean mask

    @contextlib.contextmanager
    def prepare(self, p: CopyParams, device: Device, seed: int) -> Iterator[CopyCase]:
        gen = torch.Generator(device=device.torch_device).manual_seed(seed)
        n = n_elements(p)
        src = torch.randn(n, generator=gen, device=device.torch_device)
        yield CopyCase(device, gen, src, torch.empty_like(src))
