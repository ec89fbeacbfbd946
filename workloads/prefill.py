"""Prefill (pp512-style): one forward pass over a prompt of N random tokens at batch B.

It fills the KV cache and produces the last position's logits, as a server does before its
first output token. tokens/s = B x N / time; MFU from PaLM FLOPs for a forward pass over the
prompt (2 FLOPs per matmul parameter per token, the output head for the last position only, plus
attention): `mfu` counts every (query, key) pair as published MFU does, `mfu_causal` the unmasked
half a causal kernel computes. The check recomputes the last logits a second way (prompt minus one token,
then a cached single-token step) and compares.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import Field

from bench.device.base import Device
from workloads.base import CheckResult, Counts
from workloads.llama import Transformer, n_matmul_params
from workloads.llm_base import (
    LlmParams,
    LlmWorkload,
    checked_with_fp32_copy,
    compile_fields,
    compute_dtype,
    inference_memory_bytes,
    inference_setup,
    maybe_compile,
    model_fields,
    random_tokens,
    relative_error,
    resolved_dtype,
    torch_dtype,
    weight_bytes,
)
from workloads.llm_metrics import attention_flops_per_token, kv_cache_bytes, mfu


class PrefillParams(LlmParams):
    prompt_len: int = Field(512, gt=1, description="prompt tokens per sequence")


def prefill_flops(p: PrefillParams, causal: bool = True) -> float:
    """B x (2 x body params x N + 2 x head params + N x attention per token); causal=True counts the
    unmasked pairs (the work done, the record's `flops`), causal=False every pair (published MFU)."""
    a = p.args()
    head = a.vocab_size * a.dim
    body = n_matmul_params(a) - head
    per_seq = 2.0 * body * p.prompt_len + 2.0 * head
    per_seq += p.prompt_len * attention_flops_per_token(a.n_layers, a.n_heads, a.head_dim, p.prompt_len, causal)
    return p.batch * per_seq


@dataclass
class PrefillCase:
    p: PrefillParams
    model: Transformer
    tokens: torch.Tensor  # (B, N)
    generator: torch.Generator
    device: Device
    dtype: str
    kernel: str | None = "eager"
    forward: Any = None  # the model, or its compiled form; check() always uses the eager model

    def run(self) -> torch.Tensor:
        with torch.inference_mode():
            return (self.model if self.forward is None else self.forward)(
                self.tokens, 0, last_only=True
            )  # (B, 1, vocab)

    def extra(self, timing: Any, peaks: dict[str, float | None]) -> dict[str, Any]:
        tokens = self.p.batch * self.p.prompt_len
        tokens_per_s = tokens / timing.summary.median
        fpt, causal = prefill_flops(self.p, causal=False) / tokens, prefill_flops(self.p) / tokens
        return {
            "flops_per_token": fpt,
            "flops_per_token_causal": causal,
            "mfu": mfu(fpt, tokens_per_s, peaks["flops"]),
            "mfu_causal": mfu(causal, tokens_per_s, peaks["flops"]),
            **compile_fields(self.p, timing),
        }

    def compare(self, tokens: torch.Tensor) -> float:
        """Last logits of one pass against prompt-minus-one then a cached step: relative error."""
        with torch.inference_mode():
            direct = self.model(tokens, 0, last_only=True)
            self.model(tokens[:, :-1], 0, last_only=True)  # the cache now holds N - 1 positions
            stepped = self.model(tokens[:, -1:], self.p.prompt_len - 1)
        return relative_error(direct, stepped)

    def check(self) -> CheckResult:
        """The last logits computed two ways must agree (and, below fp32, so must an fp32 copy of
        the model's: see checked_with_fp32_copy)."""
        tokens = random_tokens(tuple(self.tokens.shape), self.p.args().vocab_size, self.device, self.generator)
        detail = "||L_prefill - L_cached_step|| / ||L_cached_step|| (last logits)"
        return checked_with_fp32_copy(
            Prefill(), self.p, self.device, self.dtype, self.compare(tokens), detail, lambda twin: twin.compare(tokens)
        )


class Prefill(LlmWorkload[PrefillParams]):
    id = "prefill"
    version = 1
    description = "LLM prefill of an N-token prompt at batch B (pp512-style); tokens/s, MFU"
    Params = PrefillParams

    def label(self, p: PrefillParams) -> str:
        return f"{super().label(p)} pp{p.prompt_len}"

    def counts(self, p: PrefillParams, device: Device | None = None) -> Counts:
        a, dtype = p.args(), resolved_dtype(p, device)
        elem = torch.empty((), dtype=torch_dtype(dtype)).element_size()
        kv_written = kv_cache_bytes(a.n_layers, a.n_kv_heads, a.head_dim, p.batch, p.prompt_len, elem)
        nbytes = weight_bytes(p, dtype) + kv_written
        return Counts(flops=prefill_flops(p), bytes=float(nbytes), tokens=p.batch * p.prompt_len)

    def memory_bytes(self, p: PrefillParams, device: Device | None = None) -> int:
        return inference_memory_bytes(p, resolved_dtype(p, device, assume="fp32"), p.prompt_len, device)

    def record_fields(self, p: PrefillParams, device: Device) -> dict[str, Any]:
        return model_fields(p, compute_dtype(p, device))

    @contextlib.contextmanager
    def prepare(self, p: PrefillParams, device: Device, seed: int) -> Iterator[PrefillCase]:
        dtype, model, gen, tokens = inference_setup(p, device, seed, p.prompt_len, context=p.prompt_len)
        forward, kernel = maybe_compile(model, p, device)
        yield PrefillCase(p, model, tokens, gen, device, dtype, kernel=kernel, forward=forward)
