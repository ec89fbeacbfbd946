"""What every workload provides: an id, a version, typed parameters, work counts, a case.

A workload file declares its `Params` (a pydantic model, validated before anything runs), the
analytic work of one call (`counts`), the memory it needs (`memory_bytes`, so a shape that will
not fit is skipped, not crashed), and `prepare`, a context manager yielding a `Case` whose
`run()` is the timed call and whose `check()` verifies the output on fresh random inputs.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

import torch
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from bench.device.base import DTYPES, Device
from bench.errors import first_error

Dtype = Literal["fp32", "tf32", "fp16", "bf16", "fp8"]
FloatDtype = Literal["fp32", "fp16", "bf16"]


class ParamsError(ValueError):
    """Invalid workload parameters; the message is one line naming the field."""


INT_LIMIT = 2**63  # a parameter's integer fits torch's int64 sizes, and every count of it a float


def _kinds(annotation: Any) -> set[Any]:
    """The types an annotation admits: int | None gives {int, NoneType}; Literal[...] gives {Literal}."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return {k for arg in typing.get_args(annotation) for k in _kinds(arg)}
    return {typing.get_origin(annotation) or annotation}


class Params(BaseModel):
    """Base of every workload's parameters: unknown keys are errors, values are immutable.

    Numbers are what they say: a float must be finite (inf, nan and 1e400 are refused), and an
    integer or a float field takes no true/false (TOML's `m = true` is not 1) and an integer is
    below 2^63. Text from the command line still converts (`m=512` gives 512, `compile=true` True).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        kinds = _kinds(cls.model_fields[info.field_name or ""].annotation)
        if isinstance(value, bool) and bool not in kinds and kinds & {int, float}:
            raise PydanticCustomError("number_not_bool", "Input should be a number, not true or false")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _int64(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and not -INT_LIMIT <= value < INT_LIMIT:
            raise PydanticCustomError("int_too_large", "Input should be a 64-bit integer (less than 2^63 in size)")
        return value


@dataclass(frozen=True)
class Counts:
    """Analytic work of one timed call. None where a count does not apply."""

    flops: float | None = None
    bytes: float | None = None  # bytes that must move to/from device memory (minimum traffic)
    tokens: int | None = None


@dataclass(frozen=True)
class CheckResult:
    """Output check: the normalised error against a reference and the tolerance it must meet."""

    passed: bool
    error: float
    tolerance: float
    detail: str = ""
    fields: dict[str, Any] = field(default_factory=dict)  # what else the check counted, for the record


class Case(Protocol):
    kernel: str | None  # the implementation that ran (e.g. the SDPA backend), where known

    def run(self) -> object:
        """The timed call. Must not synchronise or allocate more than it has to."""

    def check(self) -> CheckResult:
        """Run once on fresh random inputs and compare with a higher-precision reference."""


def case_extra(case: Case, timing: Any, peaks: dict[str, float | None]) -> dict[str, Any]:
    """Fields a case measures beyond time (loss, TTFT, MBU, ...), from its optional `extra()`.

    `extra(timing, peaks)` gets the Timing of the timed calls (the last `timing.summary.n` calls
    of `run`) and the device's peaks in FLOP/s and bytes/s (None where unknown).
    """
    extra = getattr(case, "extra", None)
    return extra(timing, peaks) if extra else {}


def element_size(dtype: str) -> int:
    """Bytes per element of a dtype name (tf32 is stored as fp32)."""
    target = DTYPES[dtype]
    if target is None:  # an old torch without fp8 types
        return 1
    return torch.empty((), dtype=target).element_size()


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of a dtype name that this torch has (fp8 may be missing from an old one)."""
    dtype = DTYPES[name]
    assert dtype is not None
    return dtype


def normalised_max_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """max |out - ref| / rms(ref): an error scale that does not grow with the reduction size.

    Non-finite output gives +inf, so a NaN can never pass a check.
    """
    diff = out.to(ref.dtype).sub_(ref).abs_()  # one temporary: large checks must fit in memory
    if not torch.isfinite(diff).all():
        return float("inf")
    rms = (torch.linalg.vector_norm(ref) / math.sqrt(ref.numel())).item()
    return diff.max().item() / rms if rms > 0 else float("inf")


def random_normal(shape: tuple[int, ...], dtype: str, device: Device, generator: torch.Generator) -> torch.Tensor:
    """Standard normal values rounded to `dtype` (never zeros: a check must see real data)."""
    x = torch.randn(shape, dtype=torch.float32, device=device.torch_device, generator=generator)
    target = DTYPES[dtype]
    return x.to(target) if target is not None and target != torch.float32 else x


P = TypeVar("P", bound=Params)


class Workload(ABC, Generic[P]):
    """A standardised benchmark. Bump `version` whenever what it measures changes.

    Generic in its parameters: `class Gemm(Workload[GemmParams])` sets `Params = GemmParams`, and
    its methods take a GemmParams.
    """

    id: ClassVar[str]
    version: ClassVar[int]
    family: ClassVar[str]
    description: ClassVar[str]
    Params: type[P]  # set on the class (a ClassVar cannot hold a type variable)

    def parse(self, raw: dict[str, Any]) -> P:
        """Validate raw parameters; ParamsError with one line naming the bad field (and, for a name
        the workload does not have, the nearest it has)."""
        known = list(self.Params.model_fields)
        for key in raw:
            if key not in known:
                near = difflib.get_close_matches(str(key), known, n=1)
                hint = f"did you mean {near[0]!r}? " if near else ""
                raise ParamsError(f"{self.id}: {key}: unknown parameter; {hint}(parameters: {', '.join(known)})")
        try:
            return self.Params(**raw)
        except ValidationError as e:
            raise ParamsError(f"{self.id}: {first_error(e, 'params', show_input=True)}") from None

    def label(self, p: P) -> str:
        """A short human-readable name for one configuration."""
        return " ".join(f"{k}={v}" for k, v in p.model_dump().items())

    def peak_dtype(self, p: P, device: Device) -> str | None:
        """Which dtype's peak FLOP/s this configuration should be held against."""
        return getattr(p, "dtype", None)

    def lockstep(self, p: P) -> bool:
        """True when every rank must make the same calls in the same order (a collective, data-parallel
        training): the runner then has the ranks agree on when to start and on every timing count."""
        return False

    def unsupported_reason(self, p: P, device: Device) -> str | None:
        """None when this configuration can run on `device`, else why not."""
        dtype = getattr(p, "dtype", None)
        return device.unsupported_dtype_reason(dtype) if dtype else None

    @abstractmethod
    def counts(self, p: P, device: Device | None = None) -> Counts:
        """FLOPs, bytes and tokens of one timed call (on `device`, where the dtype depends on it)."""

    @abstractmethod
    def memory_bytes(self, p: P, device: Device | None = None) -> int:
        """Peak device memory the case needs on `device`, the check included."""

    def record_fields(self, p: P, device: Device) -> dict[str, Any]:
        """Fields every record of this configuration carries, skipped ones too (e.g. the model)."""
        return {}

    @abstractmethod
    def prepare(self, p: P, device: Device, seed: int) -> contextlib.AbstractContextManager[Case]:
        """Allocate inputs and yield a Case; release everything on exit."""


@contextlib.contextmanager
def float32_matmul_precision(dtype: str) -> Iterator[None]:
    """TF32 tensor-core math for 'tf32', full IEEE fp32 for everything else; restored after."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if dtype == "tf32" else "highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)
