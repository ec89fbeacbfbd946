"""Which GPU, which node, which rank a record is from: the one place that answers it from the record's fields.

Each answer is for one reader, and they differ on purpose: compare must tell apart GPUs that
share a hostname and a torch device (one per process under CUDA_VISIBLE_DEVICES), a report row
names the device as its vendor does, the node summary names GPUs as people on the node do, and
the results table says where each rank of a several-process run ran. Reads records only.
"""

from __future__ import annotations

from typing import Any


def physical_gpu(record: dict[str, Any]) -> str:
    """One GPU across runs: "host cuda:0 GPU-1a2b3c4d-5e", else the rank for processes without a UUID (CPUs)."""
    label = f"{record.get('hostname') or '?'} {record.get('device') or '?'}"
    uuid = str(record.get("gpu_uuid") or "")
    if uuid:
        # The UUID, because every process under CUDA_VISIBLE_DEVICES sees its GPU as cuda:0, and
        # two nodes can share a hostname; its start is enough to tell a node's GPUs apart.
        return f"{label} {uuid[:12]}"
    return label if record.get("rank") is None else f"{label} rank {record['rank']}"  # CPU processes of one node


def device_label(record: dict[str, Any]) -> str:
    """The device as a report row names it: "NVIDIA H100 80GB HBM3 #3", else " rank 1", else the model alone."""
    index, rank = record.get("gpu_index"), record.get("rank")
    where = f" #{index}" if index is not None else f" rank {rank}" if rank is not None else ""
    return f"{record.get('device_name') or record.get('device') or '?'}{where}"


def node_and_gpu(record: dict[str, Any]) -> tuple[str, str]:
    """(node, GPU) as people on the node name them: (hostname, "GPU 3"), else "rank 1", else the torch device."""
    index = record.get("gpu_index")
    name = f"GPU {index}" if index is not None else f"rank {record.get('rank')}"
    if index is None and record.get("rank") is None:
        name = str(record.get("device"))
    return str(record.get("hostname")), name


def rank_label(record: dict[str, Any]) -> str:
    """Where a record of a several-process run ran: "n1 r9 GPU 1" (the node only past node 0, the GPU where known)."""
    gpu = f" GPU {record['gpu_index']}" if record.get("gpu_index") is not None else ""
    node = f"n{record['node_rank']} " if record.get("node_rank") else ""
    return f"{node}r{record.get('rank')}{gpu}"
