"""A scripted workload for harness tests: it succeeds, raises, runs out of memory or answers wrong."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Literal

import torch
from pydantic import Field

from bench.device.base import Device
from workloads.base import CheckResult, Counts, Params, Workload


class FakeParams(Params):
    mode: Literal["ok", "raise", "oom", "wrong", "sleep", "kill"] = "ok"
    work: int = Field(1000, gt=0)


class FakeCase:
    def __init__(self, p: FakeParams):
        self.p = p
        self.x = torch.ones(p.work)

    def run(self) -> object:
        if self.p.mode == "raise":
            raise RuntimeError("boom\nsecond line of a long traceback message")
        if self.p.mode == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")
        if self.p.mode == "sleep":
            time.sleep(0.05)
        if self.p.mode == "kill":  # the process dies mid-suite, as on a segfault or the OOM killer
            os.kill(os.getpid(), signal.SIGKILL)
        return self.x.sum()

    def check(self) -> CheckResult:
        wrong = self.p.mode == "wrong"
        return CheckResult(not wrong, 1.0 if wrong else 0.0, 0.5, "scripted")


class Fake(Workload):
    id = "fake"
    version = 3
    family = "test"
    description = "scripted behaviour for harness tests"
    Params = FakeParams

    def counts(self, p: FakeParams, device: Device | None = None) -> Counts:
        return Counts(flops=2.0 * p.work, bytes=4.0 * p.work, tokens=p.work)

    def memory_bytes(self, p: FakeParams, device: Device | None = None) -> int:
        return 4 * p.work

    @contextlib.contextmanager
    def prepare(self, p: FakeParams, device, seed: int):
        yield FakeCase(p)
