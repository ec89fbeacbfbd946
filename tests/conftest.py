"""Shared fixtures: the CPU device, and a way to add throw-away workloads to the registry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import workloads
from bench.device.base import CpuDevice, cpu_device


@pytest.fixture
def cpu() -> CpuDevice:
    return cpu_device()


@pytest.fixture
def register(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """register(workload) adds a workload to the registry for one test only."""

    def add(workload: workloads.Workload) -> workloads.Workload:
        monkeypatch.setitem(workloads.REGISTRY, workload.id, workload)
        return workload

    yield add
