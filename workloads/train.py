"""Training step: forward, backward and AdamW over a batch of random token ids.

Weights and optimizer state stay fp32; on a GPU the forward runs under bf16 autocast (the way
LLMs are trained), on the CPU in fp32. One timed call is one optimizer step on B x T tokens.
MFU = model FLOPs per token (PaLM appendix B; see llm_metrics) x tokens/s / the device's dense
peak for the compute dtype, recorded twice: `mfu` counts the full attention matrix (the convention
torchtitan, nanoGPT, Megatron-LM and PaLM publish), `mfu_causal` its unmasked half. The check: the loss is finite and,
on one fixed batch, falls over a few steps, which proves that gradients flow.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from pydantic import Field

from bench.device.base import Device
from workloads.base import CheckResult, Counts
from workloads.llama import Transformer, n_matmul_params, n_params
from workloads.llm_base import (
    LlmParams,
    LlmWorkload,
    build_model,
    compile_fields,
    compute_dtype,
    maybe_compile,
    model_fields,
    random_tokens,
    resolved_dtype,
    torch_dtype,
)
from workloads.llm_metrics import mfu, train_flops_per_token

LEARNING_RATE = 3e-4
CHECK_STEPS = 4


class TrainParams(LlmParams):
    seq_len: int = Field(2048, gt=1, description="tokens per sequence")
    parallel: Literal["none", "ddp", "fsdp"] = Field(
        "none", description="none: this GPU alone; ddp: data-parallel over every rank; fsdp: sharded data-parallel"
    )


def flops_per_token(p: TrainParams, causal: bool = False) -> float:
    """6N + 12·L·H·Q·T (every attention pair, as published MFU counts), or with causal=True only the
    unmasked pairs: 6N + 6·L·H·Q·(T+1)."""
    a = p.args()
    return train_flops_per_token(n_matmul_params(a), a.n_layers, a.n_heads, a.head_dim, p.seq_len, causal=causal)


@dataclass
class TrainCase:
    p: TrainParams
    model: Transformer
    opt: torch.optim.Optimizer
    batch: torch.Tensor  # (B, T + 1) token ids: inputs and next-token targets
    check_batch: torch.Tensor
    autocast: torch.dtype | None
    device_type: str
    losses: list[torch.Tensor] = field(default_factory=list)
    kernel: str | None = "eager"
    forward: Any = None  # the model, or its compiled form

    def __post_init__(self) -> None:
        if self.forward is None:
            self.forward = self.model

    def _step(self, batch: torch.Tensor) -> torch.Tensor:
        self.opt.zero_grad(set_to_none=True)
        with torch.autocast(self.device_type, dtype=self.autocast or torch.float32, enabled=self.autocast is not None):
            logits = self.forward(batch[:, :-1])  # (B, T, vocab)
        loss = F.cross_entropy(logits.float().flatten(0, 1), batch[:, 1:].flatten())
        del logits  # the low-precision logits need not live through backward (B x T x vocab)
        loss.backward()
        self.opt.step()
        return loss.detach()

    def run(self) -> torch.Tensor:
        loss = self._step(self.batch)
        self.losses.append(loss)  # read back after timing: no sync inside the timed call
        return loss

    def extra(self, timing: Any, peaks: dict[str, float | None]) -> dict[str, Any]:
        fpt, causal = flops_per_token(self.p), flops_per_token(self.p, causal=True)
        tokens_per_s = self.p.batch * self.p.seq_len / timing.summary.median
        return {
            "loss": float(self.losses[-1].item()),
            "flops_per_token": fpt,
            "flops_per_token_causal": causal,
            "mfu": mfu(fpt, tokens_per_s, peaks["flops"]),
            "mfu_causal": mfu(causal, tokens_per_s, peaks["flops"]),
            **compile_fields(self.p, timing),
        }

    def check(self) -> CheckResult:
        losses = [float(self._step(self.check_batch).item()) for _ in range(CHECK_STEPS)]
        if not all(math.isfinite(x) for x in losses):
            return CheckResult(False, math.inf, 1.0, f"loss not finite: {losses}")
        ratio = losses[-1] / losses[0]
        detail = f"loss on one fixed batch over {CHECK_STEPS} steps, {losses[0]:.4f} -> {losses[-1]:.4f}, must fall"
        return CheckResult(ratio < 1.0, ratio, 1.0, detail)


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _parallel(model: Transformer, p: TrainParams, device: Device) -> Any:
    """The model wrapped for data-parallel training over the default process group."""
    if p.parallel == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.torch_device.index] if device.kind == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)
    if p.parallel == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for layer in model.layers:
            fully_shard(layer)
        return fully_shard(model)
    return model


class Train(LlmWorkload[TrainParams]):
    id = "train"
    version = 1
    description = "LLM training step (forward, backward, AdamW) on random tokens; tokens/s, MFU, loss"
    Params = TrainParams

    def label(self, p: TrainParams) -> str:
        return f"{super().label(p)} s{p.seq_len}" + ("" if p.parallel == "none" else f" {p.parallel}")

    def lockstep(self, p: TrainParams) -> bool:
        return p.parallel != "none"  # every step all-reduces (DDP) or gathers and scatters (FSDP) across ranks

    def unsupported_reason(self, p: TrainParams, device: Device) -> str | None:
        if p.parallel != "none" and not (dist.is_available() and dist.is_initialized()):
            return f"parallel={p.parallel} needs several processes: launch with tokenbench run --nproc N, or torchrun"
        if p.parallel != "none" and p.compile:
            return "compile with parallel training is not measured here: run them apart"
        return super().unsupported_reason(p, device)

    def counts(self, p: TrainParams, device: Device | None = None) -> Counts:
        """The work a causal kernel does: the unmasked attention pairs only (flops_per_token_causal)."""
        tokens = p.batch * p.seq_len
        return Counts(flops=flops_per_token(p, causal=True) * tokens, tokens=tokens)

    def memory_bytes(self, p: TrainParams, device: Device | None = None) -> int:
        """fp32 weights, gradients and two AdamW moments (16 bytes a parameter), autocast's
        low-precision weight copies, activations kept for backward, and the logits."""
        a = p.args()
        n = n_params(a)
        low = (
            4 if resolved_dtype(p, device, assume="fp32") == "fp32" else 2
        )  # bytes of an activation (bf16 under autocast)
        tokens = p.batch * p.seq_len
        kv_dim = a.n_kv_heads * a.head_dim
        per_token_layer = low * (6 * a.dim + 2 * kv_dim + 4 * a.ffn_dim) + 8 * a.dim  # + fp32 norm temporaries
        logits = tokens * a.vocab_size * (low + 4 + 4)  # logits, their fp32 copy and its gradient
        state = 16 * n + (2 if low == 2 else 0) * n
        if p.parallel == "ddp":
            state += 4 * n  # DDP's gradient buckets
        elif p.parallel == "fsdp":  # each rank keeps 1/n of the state, and gathers whole weights one unit at a time:
            layer = (n - a.vocab_size * a.dim * (1 if a.tie_embeddings else 2)) // max(a.n_layers, 1)
            root = a.vocab_size * a.dim * (1 if a.tie_embeddings else 2)  # embedding and output head, one unit
            state = state // _world_size() + 2 * 4 * max(layer, root)
        return state + a.n_layers * tokens * per_token_layer + logits

    @contextlib.contextmanager
    def prepare(self, p: TrainParams, device: Device, seed: int) -> Iterator[TrainCase]:
        dtype = compute_dtype(p, device)
        a = p.args()
        model = build_model(a, p.seq_len, device, seed, torch.float32).train()  # same weights on every rank
        model = _parallel(model, p, device)
        opt = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, fused=device.kind == "cuda" or None)
        rank = dist.get_rank() if p.parallel != "none" else 0
        gen = torch.Generator(device=device.torch_device).manual_seed(seed + 1 + 1000 * rank)  # each rank's own data
        batch = random_tokens((p.batch, p.seq_len + 1), a.vocab_size, device, gen)
        check_batch = random_tokens((p.batch, p.seq_len + 1), a.vocab_size, device, gen)
        autocast = None if dtype == "fp32" else torch_dtype(dtype)
        forward, kernel = maybe_compile(model, p, device)
        kernel = kernel if p.parallel == "none" else f"{kernel} {p.parallel}"
        yield TrainCase(
            p, model, opt, batch, check_batch, autocast, device.torch_device.type, kernel=kernel, forward=forward
        )

    def record_fields(self, p: TrainParams, device: Device) -> dict[str, Any]:
        return model_fields(p, compute_dtype(p, device))
