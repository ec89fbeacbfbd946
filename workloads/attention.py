"""Attention prefill: softmax(Q K^T / sqrt(d) + causal mask) V through scaled_dot_product_attention.

Shapes are (batch, heads, seq, head_dim); grouped-query attention shares each K/V head among
heads / kv_heads query heads. The FLOPs count only the unmasked (query, key) pairs: a causal
prefill of s tokens scores s(s+1)/2 pairs, each costing 2d FLOPs for Q K^T and 2d for P V.
The check recomputes a few (batch, head) slices in fp32 (fp64 for fp32) on fresh inputs.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch.nn.attention import SDPBackend, sdpa_kernel

from bench.device.base import Device
from workloads.base import (
    CheckResult,
    Counts,
    FloatDtype,
    Params,
    Workload,
    element_size,
    float32_matmul_precision,
    random_normal,
)

# max |O - O_ref| / rms(V). Correct kernels err by about an ulp of the largest output (every
# output is a convex mix of V rows, so |O| <= max|V| ~ 5 rms(V)) plus the rounding of P.
TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 4e-2}
_CHECK_SLICES = 3  # (batch, head) pairs recomputed by the reference: first, middle, last
_FUSED = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]
_ANY = [*_FUSED, SDPBackend.MATH]


class AttentionParams(Params):
    batch: int = Field(1, gt=0)
    heads: int = Field(32, gt=0, description="query heads")
    kv_heads: int | None = Field(None, gt=0, description="key/value heads (GQA); default = heads")
    seq_len: int = Field(4096, gt=0)
    head_dim: int = Field(128, gt=0)
    dtype: FloatDtype = "bf16"
    causal: bool = True

    @model_validator(mode="after")
    def _gqa_divides(self) -> AttentionParams:
        if self.heads % self.n_kv_heads:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads ({self.n_kv_heads})")
        return self

    @property
    def n_kv_heads(self) -> int:
        return self.kv_heads or self.heads


def attention_pairs(seq_len: int, causal: bool) -> int:
    """(query, key) pairs scored per head: s(s+1)/2 causal, s^2 otherwise."""
    return seq_len * (seq_len + 1) // 2 if causal else seq_len * seq_len


def reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    """Plain softmax attention of one head: q, k, v are (seq, head_dim) in the reference dtype."""
    scores = (q @ k.T) / math.sqrt(q.shape[-1])  # (s, s)
    if causal:
        mask = torch.ones(scores.shape, dtype=torch.bool, device=q.device).triu(1)
        scores = scores.masked_fill(mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def _slices(p: AttentionParams) -> list[tuple[int, int]]:
    picks = [(0, 0), (p.batch // 2, p.heads // 2), (p.batch - 1, p.heads - 1)]
    return list(dict.fromkeys(picks))[:_CHECK_SLICES]


@dataclass
class AttentionCase:
    p: AttentionParams
    device: Device
    generator: torch.Generator
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    kernel: str | None = None

    def _sdpa(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        gqa = self.p.n_kv_heads != self.p.heads
        return F.scaled_dot_product_attention(q, k, v, is_causal=self.p.causal, enable_gqa=gqa)

    def run(self) -> torch.Tensor:
        return self._sdpa(self.q, self.k, self.v)

    def check(self) -> CheckResult:
        q, k, v = _inputs(self.p, self.device, self.generator)
        out = self._sdpa(q, k, v)
        ref_dtype = torch.float64 if self.p.dtype == "fp32" else torch.float32
        group = self.p.heads // self.p.n_kv_heads
        err = 0.0
        with float32_matmul_precision("fp32"):
            for b, h in _slices(self.p):
                ref = reference(
                    q[b, h].to(ref_dtype), k[b, h // group].to(ref_dtype), v[b, h // group].to(ref_dtype), self.p.causal
                )
                diff = (out[b, h].to(ref_dtype) - ref).abs().max().item()
                scale = v[b, h // group].to(ref_dtype).pow(2).mean().sqrt().item()
                err = max(err, diff / scale if math.isfinite(diff) else math.inf)
        tol = TOLERANCE[self.p.dtype]
        return CheckResult(err <= tol, err, tol, f"max|O-O_ref|/rms(V) over {len(_slices(self.p))} heads")


def _inputs(
    p: AttentionParams, device: Device, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    q = random_normal((p.batch, p.heads, p.seq_len, p.head_dim), p.dtype, device, gen)
    k = random_normal((p.batch, p.n_kv_heads, p.seq_len, p.head_dim), p.dtype, device, gen)
    v = random_normal((p.batch, p.n_kv_heads, p.seq_len, p.head_dim), p.dtype, device, gen)
    return q, k, v


class Attention(Workload[AttentionParams]):
    id = "attention"
    version = 1
    family = "attention"
    description = "causal prefill attention (scaled_dot_product_attention), GQA-aware"
    Params = AttentionParams

    def label(self, p: AttentionParams) -> str:
        gqa = f"/{p.n_kv_heads}kv" if p.n_kv_heads != p.heads else ""
        mask = "causal" if p.causal else "full"
        return f"b{p.batch} h{p.heads}{gqa} s{p.seq_len} d{p.head_dim} {mask} {p.dtype}"

    def counts(self, p: AttentionParams, device: Device | None = None) -> Counts:
        # 4 d FLOPs per scored pair: 2d for the Q.K dot product, 2d for accumulating P V
        flops = 4.0 * p.batch * p.heads * p.head_dim * attention_pairs(p.seq_len, p.causal)
        # read Q, K, V and write O once each (what a fused kernel must move)
        elems = p.batch * p.seq_len * p.head_dim * (2 * p.heads + 2 * p.n_kv_heads)
        return Counts(flops=flops, bytes=float(elems * element_size(p.dtype)), tokens=p.batch * p.seq_len)

    def memory_bytes(self, p: AttentionParams, device: Device | None = None) -> int:
        size = element_size(p.dtype)
        qkvo = p.batch * p.seq_len * p.head_dim * (2 * p.heads + 2 * p.n_kv_heads) * size
        ref_size = 8 if p.dtype == "fp32" else 4
        # timed and fresh check tensors, plus one head's scores, mask and softmax in the reference
        per_head = p.seq_len * p.seq_len * (2 * ref_size + 1) + 4 * p.seq_len * p.head_dim * ref_size
        return 2 * qkvo + per_head

    @contextlib.contextmanager
    def prepare(self, p: AttentionParams, device: Device, seed: int) -> Iterator[AttentionCase]:
        gen = torch.Generator(device=device.torch_device).manual_seed(seed)
        # On a GPU only fused kernels may run: a silent fallback to the math backend would time
        # something else entirely (and materialise the s x s scores); it fails the record instead.
        backends = _FUSED if device.kind == "cuda" else _ANY
        with float32_matmul_precision(p.dtype), sdpa_kernel(backends):
            case = AttentionCase(p, device, gen, *_inputs(p, device, gen))
            case.kernel = chosen_backend(case.q, case.k, case.v, p)
            yield case


def chosen_backend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, p: AttentionParams) -> str | None:
    """The SDPA backend torch picks for these inputs under the active settings, e.g. 'flash_attention'."""
    try:
        gqa = p.n_kv_heads != p.heads
        choice = torch._fused_sdp_choice(q, k, v, is_causal=p.causal, enable_gqa=gqa)
        return f"sdpa:{SDPBackend(choice).name.lower()}"
    except (AttributeError, RuntimeError, TypeError, ValueError):
        return None  # a private helper: its absence must not cost the measurement
