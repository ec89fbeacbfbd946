"""Decode (tg128-style): M new tokens after a prompt of N, at batch B, with a KV cache.

One timed call serves one batch of B requests end to end: prefill the prompt (TTFT), then M - 1
single-token steps, each taking the greedy choice on the logits; the output length is fixed.
Every token's availability is marked with a device event (on the CPU, the host clock after the
synchronous step), read back only after timing, so the marks add no syncs to the timed call.

Metrics follow vLLM's definitions: TTFT, TPOT = (e2e - TTFT) / (M - 1), ITL pooled over steps,
output tokens/s = B x M / e2e, per-user tokens/s = 1 / TPOT. MBU (Databricks) = bytes a decode
step must move (every weight a token multiplies, that is all but the input embedding table, a
lookup that reads one row per token; plus the KV cache at the mean context) / TPOT / peak bandwidth.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
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
from workloads.llm_metrics import decode_flops, decode_metrics, kv_cache_bytes, mbu
from workloads.prefill import PrefillParams, prefill_flops


class DecodeParams(LlmParams):
    prompt_len: int = Field(512, gt=1, description="prompt tokens per request")
    new_tokens: int = Field(128, gt=1, description="output tokens per request (fixed length)")


def _elem(p: DecodeParams, device: Device | None) -> int:
    return torch.empty((), dtype=torch_dtype(resolved_dtype(p, device))).element_size()


def step_bytes(p: DecodeParams, device: Device | None = None) -> float:
    """Bytes a decode step must move, averaged over the M - 1 steps: every matmul weight once (the
    input embedding table is left out: a lookup reads one row of it per token, not the table), plus
    the KV cache read at the mean context N + M/2 (context N + i at step i = 1 .. M - 1)."""
    a = p.args()
    elem = _elem(p, device)
    mean_context = p.prompt_len + p.new_tokens / 2
    kv = kv_cache_bytes(a.n_layers, a.n_kv_heads, a.head_dim, p.batch, 1, elem) * mean_context
    return weight_bytes(p, resolved_dtype(p, device)) + kv


def generation_flops(p: DecodeParams) -> float:
    """Prefill of the prompt plus M - 1 steps, step i attending to N + i positions."""
    a = p.args()
    n_mm = n_matmul_params(a)
    prefill = prefill_flops(PrefillParams(**p.model_dump(exclude={"new_tokens"})))
    steps = sum(decode_flops(n_mm, a.n_layers, a.n_heads, a.head_dim, p.prompt_len + i) for i in range(1, p.new_tokens))
    return prefill + p.batch * steps


@dataclass
class DecodeCase:
    p: DecodeParams
    model: Transformer
    prompt: torch.Tensor  # (B, N)
    out: torch.Tensor  # (B, M) generated ids
    generator: torch.Generator
    device: Device
    dtype: str
    marks: list[list[Any]] = field(default_factory=list)  # per call: start + one mark per token
    kernel: str | None = "eager"
    prefill_fn: Any = None  # compiled mode: the compiled prompt pass and static-shape decode step
    step_fn: Any = None
    pos: torch.Tensor | None = None  # compiled mode: the step's position, kept on the device

    def _mark(self) -> Any:
        if self.device.kind == "cuda":
            event = torch.cuda.Event(enable_timing=True)
            event.record(self.device.stream())
            return event
        return time.perf_counter()

    def _generate(self, prompt: torch.Tensor, out: torch.Tensor, marks: list[Any] | None, keep: tuple[int, ...] = ()):
        """Greedy generation into `out`; returns the step logits (M, vocab) of each row in `keep`."""
        kept: dict[int, list[torch.Tensor]] = {row: [] for row in keep}
        n = prompt.shape[1]
        with torch.inference_mode():
            logits = (self.model if self.prefill_fn is None else self.prefill_fn)(
                prompt, 0, last_only=True
            )  # (B, 1, vocab)
            if self.pos is not None:
                self.pos.fill_(n)  # on the device: no host sync between steps
            for i in range(self.p.new_tokens):
                if i:
                    logits = self._step(out[:, i - 1 : i], n + i - 1)
                for row in keep:
                    kept[row].append(logits[row, -1].float().clone())  # a CUDA graph reuses its output
                out[:, i] = logits[:, -1].argmax(-1)
                if marks is not None:
                    marks.append(self._mark())
        return {row: torch.stack(steps) for row, steps in kept.items()}

    def _step(self, tokens: torch.Tensor, start: int) -> torch.Tensor:
        """One decode step: eager slices the cache to the positions written; compiled mode runs
        the static-shape step (whole cache, masked) that a CUDA graph can replay."""
        if self.step_fn is None:
            return self.model(tokens, start)
        if self.device.kind == "cuda":
            torch.compiler.cudagraph_mark_step_begin()
        assert self.pos is not None  # set with step_fn in prepare
        logits = self.step_fn(tokens, self.pos)
        self.pos.add_(1)
        return logits

    def run(self) -> torch.Tensor:
        marks = [self._mark()]
        self._generate(self.prompt, self.out, marks)
        self.marks.append(marks)
        return self.out

    def token_times(self, n_calls: int) -> list[np.ndarray]:
        """Seconds from each call's start to each of its tokens, for the last `n_calls` calls."""
        self.device.synchronize()
        result = []
        for marks in self.marks[-n_calls:]:
            if self.device.kind == "cuda":
                result.append(np.array([marks[0].elapsed_time(m) / 1e3 for m in marks[1:]]))
            else:
                result.append(np.array(marks[1:]) - marks[0])
        return result

    def extra(self, timing: Any, peaks: dict[str, float | None]) -> dict[str, Any]:
        fields: dict[str, Any] = decode_metrics(self.token_times(timing.summary.n), self.p.batch)
        fields.update(compile_fields(self.p, timing))
        fields["decode_step_bytes"] = step_bytes(self.p, self.device)
        fields["mbu"] = mbu(fields["decode_step_bytes"], fields["tpot_median_s"], peaks["bytes_per_s"])
        return fields

    def compare(self, prompt: torch.Tensor) -> tuple[float, int, int]:
        """Cached greedy decode of `prompt` against recomputing each whole sequence without the
        cache, for the first and last rows: (relative error of the step logits, greedy tokens
        that agree, tokens compared)."""
        out = torch.empty((prompt.shape[0], self.p.new_tokens), dtype=torch.long, device=prompt.device)
        rows = tuple(sorted({0, prompt.shape[0] - 1}))
        stepped = self._generate(prompt, out, None, keep=rows)
        err, same = 0.0, 0
        for row in rows:
            seq = torch.cat([prompt[row : row + 1], out[row : row + 1, :-1]], dim=1)  # (1, N + M - 1)
            with torch.inference_mode(), self.model.no_cache():
                full = self.model(seq, 0)[0, self.p.prompt_len - 1 :].float()  # logits that chose each token
            err = max(err, relative_error(stepped[row], full))
            same += int((full.argmax(-1) == out[row]).sum().item())
        return err, same, len(rows) * self.p.new_tokens

    def check(self) -> CheckResult:
        """On a fresh prompt, cached decoding must reproduce full recomputation (and, below fp32,
        so must an fp32 copy of the model: see checked_with_fp32_copy)."""
        prompt = random_tokens(tuple(self.prompt.shape), self.p.args().vocab_size, self.device, self.generator)
        err, same, total = self.compare(prompt)
        detail = f"||L_cached - L_full|| / ||L_full||, first and last rows; greedy tokens equal: {same}/{total}"
        return checked_with_fp32_copy(
            Decode(), self.p, self.device, self.dtype, err, detail, lambda twin: twin.compare(prompt)[0]
        )


class Decode(LlmWorkload[DecodeParams]):
    id = "decode"
    version = 1
    description = "LLM decode: M tokens after an N-token prompt at batch B (tg128-style); TTFT, TPOT, ITL, MBU"
    Params = DecodeParams

    def label(self, p: DecodeParams) -> str:
        return f"{super().label(p)} pp{p.prompt_len}+tg{p.new_tokens}"

    def counts(self, p: DecodeParams, device: Device | None = None) -> Counts:
        a = p.args()
        elem = _elem(p, device)
        prefill_bytes = weight_bytes(p, resolved_dtype(p, device))
        prefill_bytes += kv_cache_bytes(a.n_layers, a.n_kv_heads, a.head_dim, p.batch, p.prompt_len, elem)
        nbytes = prefill_bytes + (p.new_tokens - 1) * step_bytes(p, device)
        return Counts(flops=generation_flops(p), bytes=float(nbytes), tokens=p.batch * p.new_tokens)

    def memory_bytes(self, p: DecodeParams, device: Device | None = None) -> int:
        context = p.prompt_len + p.new_tokens
        return inference_memory_bytes(p, resolved_dtype(p, device, assume="fp32"), context, device)

    def record_fields(self, p: DecodeParams, device: Device) -> dict[str, Any]:
        return model_fields(p, compute_dtype(p, device))

    @contextlib.contextmanager
    def prepare(self, p: DecodeParams, device: Device, seed: int) -> Iterator[DecodeCase]:
        dtype, model, gen, prompt = inference_setup(p, device, seed, p.prompt_len, context=p.prompt_len + p.new_tokens)
        out = torch.empty((p.batch, p.new_tokens), dtype=torch.long, device=device.torch_device)
        case = DecodeCase(p, model, prompt, out, gen, device, dtype)
        if p.compile:
            case.prefill_fn, _ = maybe_compile(model, p, device)
            case.step_fn, case.kernel = maybe_compile(model.decode_step, p, device, cuda_graphs=True)
            case.pos = torch.zeros(1, dtype=torch.long, device=device.torch_device)
        yield case
