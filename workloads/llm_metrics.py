"""Pure functions for LLM work counts and serving metrics, each with its formula and source.

FLOPs follow PaLM (Chowdhery et al. 2022, appendix B): a forward pass costs 2 FLOPs per matmul
parameter per token, training 6 (forward + backward), plus attention's score and value matmuls.
Two conventions for attention, both recorded:
- full (`causal=False`, the records' `flops_per_token` and `mfu`): PaLM's 12·L·H·Q·T counts every
  (query, key) pair of a length-T sequence, masked or not. torchtitan, nanoGPT, Megatron-LM and
  PaLM publish MFU this way, so this is the figure to set beside theirs.
- causal (`causal=True`, `flops_per_token_causal` and `mfu_causal`): only the T(T+1)/2 unmasked
  pairs, each once, as FlashAttention's benchmarks count the work a causal kernel does; the term
  becomes 6·L·H·Q·(T+1) per trained token. Lower than the full figure by the attention share:
  3.3% for Llama 3.1 8B training at T = 2048, 11% at T = 8192.
Serving metrics follow vLLM's definitions: TTFT, TPOT, ITL, output tokens/s.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def attention_flops_per_token(n_layers: int, n_heads: int, head_dim: int, seq_len: int, causal: bool) -> float:
    """Forward attention FLOPs per token of a length-`seq_len` sequence: 4·H·Q per scored pair,
    pairs per token (T+1)/2 when causal, T otherwise."""
    pairs_per_token = (seq_len + 1) / 2 if causal else seq_len
    return 4.0 * n_layers * n_heads * head_dim * pairs_per_token


def train_flops_per_token(
    n_matmul_params: int, n_layers: int, n_heads: int, head_dim: int, seq_len: int, causal: bool = True
) -> float:
    """PaLM appendix B: 6N + 12·L·H·Q·T (causal=False, as nanoGPT's estimate_mfu); causal=True
    counts the unmasked pairs only: 6N + 6·L·H·Q·(T+1)."""
    return 6.0 * n_matmul_params + 3.0 * attention_flops_per_token(n_layers, n_heads, head_dim, seq_len, causal)


def prefill_flops_per_token(n_matmul_params: int, n_layers: int, n_heads: int, head_dim: int, seq_len: int) -> float:
    """Forward only over a causal prompt: 2N + 2·L·H·Q·(T+1)."""
    return 2.0 * n_matmul_params + attention_flops_per_token(n_layers, n_heads, head_dim, seq_len, causal=True)


def decode_flops(n_matmul_params: int, n_layers: int, n_heads: int, head_dim: int, context: int) -> float:
    """One new token attending to `context` positions (itself included): 2N + 4·L·H·Q·context."""
    return 2.0 * n_matmul_params + 4.0 * n_layers * n_heads * head_dim * context


def kv_cache_bytes(n_layers: int, n_kv_heads: int, head_dim: int, batch: int, context: int, elem_bytes: int) -> int:
    """Keys and values of `context` positions for `batch` sequences, all layers."""
    return 2 * n_layers * n_kv_heads * head_dim * batch * context * elem_bytes


def mfu(flops_per_token: float, tokens_per_s: float, peak_flops: float | None) -> float | None:
    """Model FLOPs utilisation: FLOPs/token x tokens/s / peak dense FLOP/s (None: peak unknown)."""
    return flops_per_token * tokens_per_s / peak_flops if peak_flops else None


def mbu(bytes_per_step: float, step_s: float, peak_bytes_per_s: float | None) -> float | None:
    """Model bandwidth utilisation (Databricks): bytes that must move per decode step (weights +
    KV cache) / step time / peak bandwidth (None: peak unknown)."""
    return bytes_per_step / step_s / peak_bytes_per_s if peak_bytes_per_s and step_s > 0 else None


def decode_metrics(calls: Sequence[Sequence[float] | np.ndarray], batch: int) -> dict[str, float]:
    """Serving metrics of decode calls, each a batch of `batch` requests started together.

    calls[c][i] is the time from call c's start to its i-th output token (the same for every
    request in the batch). Per call: TTFT = t[0]; e2e = t[-1]; TPOT = (e2e - TTFT) / (M - 1);
    ITL = gaps between consecutive tokens, pooled over calls. Output tokens/s = batch x M /
    median e2e; per-user tokens/s = 1 / median TPOT.
    """
    times = [np.asarray(t, dtype=np.float64) for t in calls]
    per_call: dict[str, Sequence[float] | np.ndarray] = {
        "ttft": [t[0] for t in times],
        "tpot": [(t[-1] - t[0]) / (t.size - 1) for t in times],
        "e2e": [t[-1] for t in times],
        "itl": np.concatenate([np.diff(t) for t in times]),
    }
    out: dict[str, float] = {}
    for name, xs in per_call.items():
        for label, q in (("median", 50), ("p90", 90), ("p99", 99)):
            out[f"{name}_{label}_s"] = float(np.percentile(xs, q))
    out["output_tokens_per_s"] = batch * times[0].size / out["e2e_median_s"]
    out["per_user_tokens_per_s"] = 1.0 / out["tpot_median_s"]
    return out
