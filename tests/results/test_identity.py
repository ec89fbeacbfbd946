"""Which GPU, node and rank a record is from (bench/results/identity.py), on hand-made records."""

from __future__ import annotations

from bench.results.identity import device_label, node_and_gpu, physical_gpu, rank_label

H100 = "NVIDIA H100 80GB HBM3"

# One GPU of an 8-GPU node, run one process per GPU: each process sees its GPU as cuda:0.
GPU_3 = {"hostname": "node-a", "device": "cuda:0", "device_name": H100, "gpu_index": 3,
         "gpu_uuid": "GPU-1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809", "rank": 3, "node_rank": 0}  # fmt: skip
# A rank of a torchrun job on the second node, where NVML gave no index or UUID.
RANK_9 = {"hostname": "node-b", "device": "cuda:1", "device_name": H100, "rank": 9, "node_rank": 1}
# A plain single-process CPU run.
CPU = {"hostname": "laptop", "device": "cpu", "device_name": "Intel(R) Xeon(R)"}


def test_physical_gpu_tells_apart_processes_that_all_see_cuda_0():
    other = {**GPU_3, "gpu_index": 4, "gpu_uuid": "GPU-99aa88bb-0000-0000-0000-000000000000", "rank": 4}
    assert physical_gpu(GPU_3) == "node-a cuda:0 GPU-1a2b3c4d"  # the UUID's first 12 characters
    assert physical_gpu(other) == "node-a cuda:0 GPU-99aa88bb"
    assert physical_gpu(RANK_9) == "node-b cuda:1 rank 9"  # no UUID: the rank keeps processes apart
    assert physical_gpu(CPU) == "laptop cpu"
    assert physical_gpu({}) == "? ?"


def test_device_label_names_the_model_and_its_index_else_rank():
    assert device_label(GPU_3) == f"{H100} #3"
    assert device_label(RANK_9) == f"{H100} rank 9"
    assert device_label(CPU) == "Intel(R) Xeon(R)"
    assert device_label({"device": "cuda:0", "gpu_index": 0}) == "cuda:0 #0"  # no model name: the torch device
    assert device_label({}) == "?"


def test_node_and_gpu_as_people_on_the_node_name_them():
    assert node_and_gpu(GPU_3) == ("node-a", "GPU 3")
    assert node_and_gpu(RANK_9) == ("node-b", "rank 9")
    assert node_and_gpu(CPU) == ("laptop", "cpu")


def test_rank_label_names_the_node_only_past_the_first():
    assert rank_label(GPU_3) == "r3 GPU 3"  # node 0 goes without saying
    assert rank_label(RANK_9) == "n1 r9"
    assert rank_label({**RANK_9, "gpu_index": 1}) == "n1 r9 GPU 1"
    assert rank_label(CPU) == "rNone"  # a record of a one-process run: the table shows no rank column then
