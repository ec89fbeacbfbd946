"""The standardised workloads, by stable id. One workload per module."""

from __future__ import annotations

import difflib

from workloads.attention import Attention
from workloads.base import ParamsError, Workload
from workloads.collective import AllGather, AllReduce, ReduceScatter
from workloads.copy import Copy
from workloads.decode import Decode
from workloads.gemm import Gemm
from workloads.prefill import Prefill
from workloads.train import Train

REGISTRY: dict[str, Workload] = {
    w.id: w
    for w in (Gemm(), Copy(), Attention(), Train(), Prefill(), Decode(), AllReduce(), AllGather(), ReduceScatter())
}


class UnknownWorkload(KeyError):
    def __str__(self) -> str:
        near = difflib.get_close_matches(str(self.args[0]), list(REGISTRY), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        return f"unknown workload {self.args[0]!r}: known are {', '.join(sorted(REGISTRY))}{hint}"


def get(workload_id: str) -> Workload:
    """The workload with this id; UnknownWorkload (one line) otherwise."""
    try:
        return REGISTRY[workload_id]
    except KeyError:
        raise UnknownWorkload(workload_id) from None


__all__ = ["REGISTRY", "ParamsError", "UnknownWorkload", "Workload", "get"]
