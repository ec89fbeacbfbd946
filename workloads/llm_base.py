"""What the LLM workloads (train, prefill, decode) share: parameters, precision, the model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

import torch
from pydantic import Field

from bench.device.base import Device
from workloads.base import CheckResult, Params, Workload, float32_matmul_precision, torch_dtype
from workloads.llama import PRESETS, ModelArgs, Transformer, from_name, n_matmul_params, n_params

Preset = Literal["tiny", "llama-3.2-1b", "llama-3.1-8b", "llama-3.1-70b"]


class LlmParams(Params):
    model: Preset = Field("tiny", description="model shape: tiny, llama-3.2-1b, llama-3.1-8b, llama-3.1-70b")
    n_layers: int | None = Field(None, gt=0, description="run this many layers instead of the preset's")
    batch: int = Field(1, gt=0, description="sequences per step")
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = Field("auto", description="auto: bf16 on a GPU, fp32 on CPU")
    compile: bool = Field(False, description="torch.compile the model; decode steps run as CUDA graphs on a GPU")

    def args(self) -> ModelArgs:
        return from_name(self.model, self.n_layers)


def compute_dtype(p: LlmParams, device: Device) -> str:
    """The dtype the model computes in: 'auto' is bf16 on a GPU and fp32 on the CPU."""
    if p.dtype != "auto":
        return p.dtype
    return "bf16" if device.kind == "cuda" else "fp32"


def resolved_dtype(p: LlmParams, device: Device | None, assume: str = "bf16") -> str:
    """compute_dtype on `device`; without one, 'auto' is taken as `assume` (bf16: a GPU run)."""
    if device is not None:
        return compute_dtype(p, device)
    return assume if p.dtype == "auto" else p.dtype


def build_model(a: ModelArgs, max_seq_len: int, device: Device, seed: int, dtype: torch.dtype) -> Transformer:
    """A randomly initialised model on `device`, allocated directly in `dtype` (built on the meta
    device first, so an 8B model in bf16 never passes through an fp32 copy twice its size)."""
    gen = torch.Generator(device=device.torch_device).manual_seed(seed)
    with torch.device("meta"):
        model = Transformer(a, max_seq_len).to(dtype)
    model = model.to_empty(device=device.torch_device)
    if a.tie_embeddings:  # leaving the meta device makes new Parameters: tie them again
        model.output.weight = model.tok_embeddings.weight
    model.init_weights(gen)  # fills every parameter and recomputes the fp32 rotary tables
    return model


def inference_setup(
    p: LlmParams, device: Device, seed: int, prompt_len: int, context: int
) -> tuple[str, Transformer, torch.Generator, torch.Tensor]:
    """What prefill and decode start from: the compute dtype, an eval-mode model with a KV cache
    of `context` positions for the batch, a generator for fresh inputs, and a random prompt."""
    dtype = compute_dtype(p, device)
    a = p.args()
    model = build_model(a, context, device, seed, torch_dtype(dtype)).eval()
    model.setup_cache(p.batch, context)
    gen = torch.Generator(device=device.torch_device).manual_seed(seed + 1)
    prompt = random_tokens((p.batch, prompt_len), a.vocab_size, device, gen)
    return dtype, model, gen, prompt


def random_tokens(shape: tuple[int, ...], vocab: int, device: Device, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(0, vocab, shape, device=device.torch_device, generator=gen)


def model_fields(p: LlmParams, dtype: str) -> dict[str, Any]:
    """Record fields that say which model ran, so a reduced-layer run is never mistaken for the full one."""
    a = p.args()
    return {
        "model_preset": p.model,
        "model_layers": a.n_layers,
        "model_layers_full": PRESETS[p.model].n_layers,
        "model_params": n_params(a),
        "model_matmul_params": n_matmul_params(a),
        "compute_dtype": dtype,
    }


LP = TypeVar("LP", bound=LlmParams)


class LlmWorkload(Workload[LP]):
    """Base of the model-level workloads: precision by device, MFU against that dtype's peak."""

    family = "llm"

    def peak_dtype(self, p: LP, device: Device) -> str | None:
        return compute_dtype(p, device)

    def unsupported_reason(self, p: LP, device: Device) -> str | None:
        return device.unsupported_dtype_reason(compute_dtype(p, device))

    def label(self, p: LP) -> str:
        layers = f" ({p.n_layers} layers)" if p.n_layers else ""
        dtype = "" if p.dtype == "auto" else f" {p.dtype}"
        return f"{p.model}{layers} b{p.batch}{dtype}{' compiled' if p.compile else ''}"


def maybe_compile(fn: Any, p: LlmParams, device: Device, cuda_graphs: bool = False) -> tuple[Any, str]:
    """`fn` compiled when p.compile (CUDA graphs where asked and on a GPU), and its kernel label."""
    if not p.compile:
        return fn, "eager"
    if cuda_graphs and device.kind == "cuda":
        return torch.compile(fn, mode="reduce-overhead", fullgraph=True), "torch.compile+cudagraphs"
    return torch.compile(fn), "torch.compile"


def compile_fields(p: LlmParams, timing: Any) -> dict[str, Any]:
    """Compilation happens in the first call, which the timer reports apart from the samples."""
    return {"compile_s": timing.first_call_s if p.compile else None}


# ||out - ref|| / ||ref|| between two computations of the same logits. Rounding noise grows
# slowly with depth (about 1e-2 for bf16 through 32 layers); a wrong cache or mask gives ~1.
REL_TOLERANCE = {"fp32": 1e-4, "fp16": 5e-2, "bf16": 1e-1}


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """||out - ref|| / ||ref|| in fp32; +inf when anything is not finite."""
    out, ref = out.float(), ref.float()
    if not (torch.isfinite(out).all() and torch.isfinite(ref).all()):
        return float("inf")
    norm = torch.linalg.vector_norm(ref).item()
    return torch.linalg.vector_norm(out - ref).item() / norm if norm > 0 else float("inf")


def weight_bytes(p: LlmParams, dtype: str) -> int:
    """Bytes of the weights a forward pass reads (all but the embedding table, a gather)."""
    elem = torch.empty((), dtype=torch_dtype(dtype)).element_size()
    return n_matmul_params(p.args()) * elem


def inference_memory_bytes(p: LlmParams, dtype: str, context: int, device: Device | None) -> int:
    """Weights, a KV cache of `context` positions, prefill activations and logits, plus the
    check's full-length recomputation (its logits) and, on the CPU, unfused attention scores."""
    a = p.args()
    elem = torch.empty((), dtype=torch_dtype(dtype)).element_size()
    weights = n_params(a) * elem
    kv = 2 * a.n_layers * a.n_kv_heads * a.head_dim * p.batch * context * elem
    acts = p.batch * context * (8 * a.dim + 3 * a.ffn_dim) * elem
    logits = (p.batch + 2 * context) * a.vocab_size * 4
    scores = p.batch * a.n_heads * context * context * 4 if device is None or device.kind != "cuda" else 0
    twin = 0  # the check's fp32 copy of at most 2 layers, with its cache, when the run is not fp32
    if dtype != "fp32":
        small = from_name(p.model, min(a.n_layers, 2))
        twin = n_params(small) * 4 + 2 * small.n_layers * small.n_kv_heads * small.head_dim * p.batch * context * 4
    return weights + kv + acts + logits + scores + twin


def checked_with_fp32_copy(
    workload: Workload, p: LlmParams, device: Device, dtype: str, err: float, detail: str,
    compare: Callable[[Any], float],
) -> CheckResult:  # fmt: skip
    """Pass `err` (this run's own comparison) against its dtype's tolerance. Below fp32, rounding
    noise is as large as the error a broken cache or mask causes, so `compare` also runs on an
    fp32 copy of the model (at most 2 layers, same code path, TF32 off) and must agree to 1e-4."""
    tol = REL_TOLERANCE[dtype]
    if dtype == "fp32":
        return CheckResult(err <= tol, err, tol, detail)
    twin_p = p.model_copy(update={"n_layers": min(p.args().n_layers, 2), "dtype": "fp32"})
    with workload.prepare(twin_p, device, seed=0) as twin, float32_matmul_precision("fp32"):
        err32 = compare(twin)
    tol32 = REL_TOLERANCE["fp32"]
    detail += f"; {dtype} error {err:.3g} (tolerance {tol:.3g}); fp32 copy ({twin_p.n_layers} layers)"
    return CheckResult(err <= tol and err32 <= tol32, err32, tol32, detail)
