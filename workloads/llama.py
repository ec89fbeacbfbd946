"""A Llama-style decoder in plain PyTorch: RMSNorm, rotary embeddings, grouped-query attention
(scaled_dot_product_attention) and a SwiGLU MLP, with a preallocated KV cache for decoding.

Weights are random (nothing is downloaded): throughput and memory depend on the shapes, not on
the values. Presets follow the public configs of Meta's models (Hugging Face `config.json` of
meta-llama/Llama-3.2-1B, Llama-3.1-8B and Llama-3.1-70B); the llama3 RoPE frequency scaling is
left out because it changes no shape and no FLOP count.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelArgs:
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn_dim: int
    vocab_size: int
    rope_theta: float = 500_000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = False

    def __post_init__(self) -> None:
        if self.dim % self.n_heads:
            raise ValueError(f"dim ({self.dim}) must be a multiple of n_heads ({self.n_heads})")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads ({self.n_kv_heads})")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


# Public configs: hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads,
# intermediate_size, vocab_size, rope_theta, tie_word_embeddings (meta-llama on Hugging Face).
PRESETS: dict[str, ModelArgs] = {
    "tiny": ModelArgs(dim=128, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=384, vocab_size=512, rope_theta=10_000.0),
    "llama-3.2-1b": ModelArgs(
        dim=2048, n_layers=16, n_heads=32, n_kv_heads=8, ffn_dim=8192, vocab_size=128_256, tie_embeddings=True
    ),
    "llama-3.1-8b": ModelArgs(dim=4096, n_layers=32, n_heads=32, n_kv_heads=8, ffn_dim=14_336, vocab_size=128_256),
    "llama-3.1-70b": ModelArgs(dim=8192, n_layers=80, n_heads=64, n_kv_heads=8, ffn_dim=28_672, vocab_size=128_256),
}


def from_name(name: str, n_layers: int | None = None) -> ModelArgs:
    """A preset, optionally with fewer (or more) layers than the real model."""
    args = PRESETS[name]
    return replace(args, n_layers=n_layers) if n_layers else args


def n_params(a: ModelArgs) -> int:
    """Parameters: embeddings (+ a separate output head unless tied), per-layer weights, norms."""
    kv_dim = a.n_kv_heads * a.head_dim
    attn = a.dim * a.dim * 2 + a.dim * kv_dim * 2  # wq, wo; wk, wv
    mlp = 3 * a.dim * a.ffn_dim  # w1 (gate), w3 (up), w2 (down)
    layer = attn + mlp + 2 * a.dim  # + two RMSNorm weights
    embed = a.vocab_size * a.dim * (1 if a.tie_embeddings else 2)
    return a.n_layers * layer + embed + a.dim  # + the final norm


def n_matmul_params(a: ModelArgs) -> int:
    """Parameters that take part in a matmul per token: all but the norms and the input embedding
    lookup (a gather, not a matmul). With tied embeddings the output head still multiplies."""
    return n_params(a) - (2 * a.n_layers + 1) * a.dim - (0 if a.tie_embeddings else a.vocab_size * a.dim)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def rope_tables(head_dim: int, n_pos: int, theta: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of shape (n_pos, head_dim / 2) for rotary embeddings."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(n_pos, device=device, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[..., :d/2], x[..., d/2:]) by position; x is (B, H, T, hd), cos/sin (T, hd/2)."""
    x1, x2 = x.float().chunk(2, dim=-1)
    out = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.type_as(x)


class KVCache(nn.Module):
    """Preallocated keys and values: (B, n_kv_heads, max_len, head_dim) each."""

    k: torch.Tensor  # buffers, registered in __init__
    v: torch.Tensor

    def __init__(self, batch: int, n_kv_heads: int, max_len: int, head_dim: int, dtype: torch.dtype, device):
        super().__init__()
        shape = (batch, n_kv_heads, max_len, head_dim)
        self.register_buffer("k", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("v", torch.zeros(shape, dtype=dtype, device=device), persistent=False)

    def write_at(self, pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write one position given as a (1,) device tensor; return the whole cache (static shapes)."""
        self.k.index_copy_(2, pos, k)
        self.v.index_copy_(2, pos, v)
        return self.k, self.v

    def update(self, start: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write positions [start, start + T) and return keys/values for [0, start + T)."""
        end = start + k.shape[2]
        self.k[:, :, start:end] = k
        self.v[:, :, start:end] = v
        return self.k[:, :, :end], self.v[:, :, :end]


class Attention(nn.Module):
    def __init__(self, a: ModelArgs):
        super().__init__()
        self.a = a
        kv_dim = a.n_kv_heads * a.head_dim
        self.wq = nn.Linear(a.dim, a.dim, bias=False)
        self.wk = nn.Linear(a.dim, kv_dim, bias=False)
        self.wv = nn.Linear(a.dim, kv_dim, bias=False)
        self.wo = nn.Linear(a.dim, a.dim, bias=False)
        self.cache: KVCache | None = None

    def forward(self, x: torch.Tensor, start: int, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        a, (B, T, _) = self.a, x.shape
        q = self.wq(x).view(B, T, a.n_heads, a.head_dim).transpose(1, 2)  # (B, nh, T, hd)
        k = self.wk(x).view(B, T, a.n_kv_heads, a.head_dim).transpose(1, 2)  # (B, nkv, T, hd)
        v = self.wv(x).view(B, T, a.n_kv_heads, a.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if self.cache is not None:
            k, v = self.cache.update(start, k, v)  # (B, nkv, start + T, hd)
        S = k.shape[2]
        gqa = a.n_kv_heads != a.n_heads
        if T == 1 or (T == S):  # one new token sees everything; a fresh prompt is plain causal
            y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1, enable_gqa=gqa)
        else:  # a chunk after cached positions: query i sees keys up to start + i
            mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=S - T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
        return self.wo(y.transpose(1, 2).reshape(B, T, a.dim))

    def step(self, x: torch.Tensor, pos: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """One new token per sequence at position `pos` (a (1,) tensor), attending over the whole
        preallocated cache through a mask: every shape is fixed, so it can be captured in a CUDA graph."""
        a, B = self.a, x.shape[0]
        q = self.wq(x).view(B, 1, a.n_heads, a.head_dim).transpose(1, 2)  # (B, nh, 1, hd)
        k = self.wk(x).view(B, 1, a.n_kv_heads, a.head_dim).transpose(1, 2)
        v = self.wv(x).view(B, 1, a.n_kv_heads, a.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        assert self.cache is not None, "step() needs a KV cache: call setup_cache first"
        k, v = self.cache.write_at(pos, k, v)  # (B, nkv, max_len, hd)
        mask = torch.arange(k.shape[2], device=x.device) <= pos  # (max_len,): positions written so far
        # Grouped-query attention without enable_gqa: the n_heads / n_kv_heads query heads that
        # share a KV head become that many query rows of it, which every fused kernel that takes
        # a mask accepts (some torch releases fall back to the math kernel for masked GQA).
        rep = a.n_heads // a.n_kv_heads
        y = F.scaled_dot_product_attention(
            q.reshape(B, a.n_kv_heads, rep, a.head_dim), k, v, attn_mask=mask.view(1, 1, 1, -1)
        )  # (B, nkv, rep, hd)
        return self.wo(y.reshape(B, a.n_heads, 1, a.head_dim).transpose(1, 2).reshape(B, 1, a.dim))


class FeedForward(nn.Module):
    def __init__(self, a: ModelArgs):
        super().__init__()
        self.w1 = nn.Linear(a.dim, a.ffn_dim, bias=False)  # gate
        self.w3 = nn.Linear(a.dim, a.ffn_dim, bias=False)  # up
        self.w2 = nn.Linear(a.ffn_dim, a.dim, bias=False)  # down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, a: ModelArgs):
        super().__init__()
        self.attention_norm = RMSNorm(a.dim, a.norm_eps)
        self.attention = Attention(a)
        self.ffn_norm = RMSNorm(a.dim, a.norm_eps)
        self.feed_forward = FeedForward(a)

    def forward(self, x: torch.Tensor, start: int, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        h = x + self.attention(self.attention_norm(x), start, cos, sin)
        return h + self.feed_forward(self.ffn_norm(h))

    def step(self, x: torch.Tensor, pos: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        h = x + self.attention.step(self.attention_norm(x), pos, cos, sin)
        return h + self.feed_forward(self.ffn_norm(h))


class Transformer(nn.Module):
    rope_cos: torch.Tensor  # buffers, registered in __init__
    rope_sin: torch.Tensor

    def __init__(self, a: ModelArgs, max_seq_len: int):
        super().__init__()
        self.a = a
        self.tok_embeddings = nn.Embedding(a.vocab_size, a.dim)
        self.layers = nn.ModuleList(Block(a) for _ in range(a.n_layers))
        self.norm = RMSNorm(a.dim, a.norm_eps)
        self.output = nn.Linear(a.dim, a.vocab_size, bias=False)
        if a.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight
        cos, sin = rope_tables(a.head_dim, max_seq_len, a.rope_theta, self.output.weight.device)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def init_weights(self, generator: torch.Generator) -> None:
        """Norms at 1; every matrix normal with std 1/sqrt(dim in), so activations and logits
        stay O(1) in any dtype (the embedding too: tied, it is the output head)."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("norm.weight"):
                    p.fill_(1.0)
                else:
                    p.normal_(0.0, 1.0 / math.sqrt(p.shape[-1]), generator=generator)
            self.reset_rope()

    def reset_rope(self) -> None:
        """(Re)compute the rotary tables in fp32 on the model's device."""
        cos, sin = rope_tables(self.a.head_dim, self.rope_cos.shape[0], self.a.rope_theta, self.output.weight.device)
        self.rope_cos, self.rope_sin = cos, sin

    def blocks(self) -> list[Block]:
        """The layers, typed as Blocks (nn.ModuleList gives its items as plain Modules)."""
        blocks = []
        for layer in self.layers:
            assert isinstance(layer, Block)
            blocks.append(layer)
        return blocks

    def setup_cache(self, batch: int, max_len: int) -> None:
        """Preallocate a KV cache per layer (in the weights' dtype), or drop it with batch=0."""
        w = self.output.weight
        for layer in self.blocks():
            attn = layer.attention
            attn.cache = (
                KVCache(batch, self.a.n_kv_heads, max_len, self.a.head_dim, w.dtype, w.device) if batch else None
            )

    @contextlib.contextmanager
    def no_cache(self) -> Iterator[None]:
        """Run without the KV cache (a full recomputation), then put the caches back."""
        blocks = self.blocks()
        caches = [layer.attention.cache for layer in blocks]
        for layer in blocks:
            layer.attention.cache = None
        try:
            yield
        finally:
            for layer, cache in zip(blocks, caches, strict=True):
                layer.attention.cache = cache

    def forward(self, tokens: torch.Tensor, start: int = 0, last_only: bool = False) -> torch.Tensor:
        """Logits (B, T, vocab) for tokens (B, T) at positions [start, start + T); with
        `last_only`, (B, 1, vocab) for the last position only, as a server samples from."""
        T = tokens.shape[1]
        cos, sin = self.rope_cos[start : start + T], self.rope_sin[start : start + T]
        x = self.tok_embeddings(tokens)
        for layer in self.layers:
            x = layer(x, start, cos, sin)
        if last_only:
            x = x[:, -1:]
        return self.output(self.norm(x))

    def decode_step(self, tokens: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Logits (B, 1, vocab) for one token per sequence (B, 1) at position `pos`, a (1,) long
        tensor on the device: the static-shape step that compiled decoding captures."""
        cos, sin = self.rope_cos.index_select(0, pos), self.rope_sin.index_select(0, pos)
        x = self.tok_embeddings(tokens)
        for layer in self.layers:
            assert isinstance(layer, Block)  # for the type checker; folded away when compiled
            x = layer.step(x, pos, cos, sin)
        return self.output(self.norm(x))
