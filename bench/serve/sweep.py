"""Load shapes over several points: concurrency doublings, a rate list, and an SLO search by bisection.

A sweep is a list of LoadSpecs run one after another by a `run_point` function the caller gives
(the command's, which measures and records; a test's, which answers from a known threshold).
The SLO search looks for the highest request rate (or concurrency) whose load point meets the SLO
(slo_attainment >= slo_target): it tries the low bound, then the high bound, then bisects between
the highest load that met the SLO and the lowest that did not, until the bounded number of points is
spent or the interval is closed. Every point tried is kept (and recorded by the caller).

Standard scenarios and SLO presets are data: bench/serve/scenarios.toml.
"""

from __future__ import annotations

import difflib
import itertools
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from bench.results import files
from bench.serve.model import LoadSpec, Slo

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SCENARIOS_FILE = Path(__file__).with_name("scenarios.toml")
SCENARIOS_LIMIT_BYTES = 1 << 20
MAX_SWEEP_POINTS = 64  # a sweep longer than this is refused: every point is a whole load
RATE_RESOLUTION = 0.01  # a rate search stops when hi - lo <= this share of hi


class SweepError(ValueError):
    """A sweep or scenario given wrongly; the message is one line."""


def doublings(n: int) -> list[int]:
    """1, 2, 4, ... up to n, with n itself last when it is not a power of two (InferenceX's concurrencies)."""
    if n < 1:
        raise SweepError(f"a concurrency must be at least 1, got {n}")
    out = [1 << k for k in range(n.bit_length()) if 1 << k <= n]
    return out if out[-1] == n else [*out, n]


def parse_numbers(text: str, what: str, integer: bool) -> list[float]:
    """'1,2,4' -> [1, 2, 4]: positive, finite, increasing; one line naming `what` when not."""
    values: list[float] = []
    for item in (s.strip() for s in text.split(",")):
        try:
            value = int(item) if integer else float(item)
        except ValueError:
            kind = "integers" if integer else "numbers"
            raise SweepError(f"{what}: {item!r} is not a number (give {kind} separated by commas)") from None
        if not math.isfinite(value) or value <= 0:
            raise SweepError(f"{what}: {item} must be a positive finite number")
        values.append(value)
    if len(values) > MAX_SWEEP_POINTS:
        raise SweepError(f"{what}: {len(values)} points; at most {MAX_SWEEP_POINTS}")
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise SweepError(f"{what}: values must increase ({text})")
    return values


def concurrency_sweep(text: str) -> list[int]:
    """--concurrency-sweep: 'N' means doublings up to N; '1,2,8' is that list."""
    values = [int(v) for v in parse_numbers(text, "--concurrency-sweep", integer=True)]
    return doublings(values[0]) if len(values) == 1 else values


def sweep_specs(base: LoadSpec, kind: Literal["concurrency", "rate"], values: Sequence[float]) -> list[LoadSpec]:
    """One LoadSpec per value: a concurrency point sends at rate inf under the cap (InferenceX's method)."""
    if kind == "concurrency":
        return [replace(base, request_rate=math.inf, max_concurrency=int(v)) for v in values]
    return [replace(base, request_rate=float(v)) for v in values]


def scaled_prompts(spec: LoadSpec, per_concurrency: int | None) -> LoadSpec:
    """--prompts-per-concurrency K: a point capped at concurrency C sends K x C requests (InferenceX's practice:
    every point runs about K rounds of its cap, so concurrency 1 is not hours long and 256 not seconds)."""
    if per_concurrency is None or spec.max_concurrency is None:
        return spec
    return replace(spec, num_prompts=per_concurrency * spec.max_concurrency)


def run_sweep(specs: list[LoadSpec], run_point: Callable[[LoadSpec], Any], stopped: Callable[[], bool]) -> list[Any]:
    """Run every spec in order; stop early when `stopped()` says so (Ctrl-C). Returns what each point gave."""
    out = []
    for spec in specs:
        if stopped():
            break
        out.append(run_point(spec))
    return out


@dataclass
class SearchResult:
    """Every point the SLO search tried, in order, and the highest load that met the SLO (None: none did)."""

    tried: list[tuple[float, bool]] = field(default_factory=list)
    best: float | None = None
    reason: str = ""  # why the search stopped


def _midpoint(lo: float, hi: float, integer: bool) -> float | None:
    """The next load to try between a met `lo` and a missed `hi`, or None when the interval is closed."""
    if integer:
        return float((int(lo) + int(hi)) // 2) if hi - lo > 1 else None
    return (lo + hi) / 2 if hi - lo > RATE_RESOLUTION * hi else None


def slo_search(
    meets: Callable[[float], bool],
    lo: float,
    hi: float,
    max_points: int,
    integer: bool = False,
    stopped: Callable[[], bool] = lambda: False,
) -> SearchResult:
    """Bisection for the highest load in [lo, hi] that meets the SLO, at most `max_points` loads tried.

    `meets(x)` runs the load point at x (a rate, or a concurrency when `integer`) and says whether it
    met the SLO. Order: lo, hi, then midpoints of (highest met, lowest missed).
    """
    if not 0 < lo < hi or not math.isfinite(hi):
        raise SweepError(f"--slo-search bounds: need 0 < low < high (finite), got {lo:g} and {hi:g}")
    if max_points < 2:
        raise SweepError(f"--slo-search-points: at least 2 (the two bounds), got {max_points}")
    res = SearchResult()

    def attempt(x: float) -> bool | None:
        if stopped() or len(res.tried) >= max_points:
            return None
        ok = bool(meets(x))
        res.tried.append((x, ok))
        if ok and (res.best is None or x > res.best):
            res.best = x
        return ok

    first = attempt(lo)
    if not first:
        res.reason = "the low bound missed the SLO" if first is False else "stopped"
        return res
    top = attempt(hi)
    if top is not False:
        res.reason = "the high bound met the SLO" if top else "stopped"
        return res
    good, bad = lo, hi
    while (x := _midpoint(good, bad, integer)) is not None:
        ok = attempt(x)
        if ok is None:
            res.reason = "stopped" if stopped() else f"{max_points} points tried"
            return res
        good, bad = (x, bad) if ok else (good, x)
    res.reason = "the interval is closed"
    return res


def best_point(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ok record with the most output tokens/s among those meeting the SLO (None when none does)."""
    met = [r for r in records if r.get("status") == "ok" and r.get("slo_met")]
    return max(met, key=lambda r: r.get("output_tokens_per_s") or 0.0) if met else None


@dataclass(frozen=True)
class Scenario:
    """Standard input/output lengths (scenarios.toml [scenario.NAME])."""

    name: str
    input_len: int
    output_len: int
    range_ratio: float
    source: str


def _table(data: dict[str, Any], kind: str) -> dict[str, Any]:
    table = data.get(kind)
    if not isinstance(table, dict):
        raise SweepError(f"{SCENARIOS_FILE}: no [{kind}.NAME] tables")
    return table


def read_scenarios(path: Path = SCENARIOS_FILE) -> dict[str, Any]:
    """The scenarios file, read bounded."""
    try:
        return tomllib.loads(files.read_text_bounded(path, SCENARIOS_LIMIT_BYTES, "a scenarios file"))
    except (OSError, ValueError) as e:
        raise SweepError(f"{path}: cannot read ({e})") from None


def _pick(table: dict[str, Any], name: str, kind: str) -> dict[str, Any]:
    if name in table:
        return dict(table[name])
    close = difflib.get_close_matches(name, list(table), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(table))}"
    raise SweepError(f"unknown {kind} {name!r}{hint}")


def scenario(name: str, path: Path = SCENARIOS_FILE) -> Scenario:
    """--scenario NAME: its lengths and range ratio."""
    t = _pick(_table(read_scenarios(path), "scenario"), name, "scenario")
    try:
        return Scenario(name, int(t["input_len"]), int(t["output_len"]), float(t["range_ratio"]), str(t["source"]))
    except (KeyError, TypeError, ValueError) as e:
        raise SweepError(f"{path}: scenario {name!r} is malformed ({e})") from None


def slo_preset(name: str, path: Path = SCENARIOS_FILE) -> tuple[Slo, str]:
    """--slo-preset NAME: the SLO (seconds) and the source it comes from."""
    t = _pick(_table(read_scenarios(path), "slo"), name, "SLO preset")
    try:
        ms = {k: float(t[f"{k}_ms"]) if f"{k}_ms" in t else None for k in ("ttft", "tpot", "e2el")}
        slo = Slo(*(v / 1000 if v is not None else None for v in (ms["ttft"], ms["tpot"], ms["e2el"])))
        return slo, str(t["source"])
    except (KeyError, TypeError, ValueError) as e:
        raise SweepError(f"{path}: SLO preset {name!r} is malformed ({e})") from None


SUMMARY_COLUMNS = ("seq", "load", "status", "req/s", "out tok/s", "tok/s/GPU", "tok/s/user", "TTFT p99 ms",
                   "TPOT p99 ms", "SLO att.", "SLO met")  # fmt: skip


def _fmt(value: Any, scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}{unit}"


def summary_row(r: dict[str, Any]) -> list[str]:
    """One record as a row under SUMMARY_COLUMNS (the sweep's table across points)."""
    met = r.get("slo_met")
    return [str(r.get("seq")), str(r.get("label")), str(r.get("status")), _fmt(r.get("request_throughput"), digits=2),
            _fmt(r.get("output_throughput")), _fmt(r.get("output_tokens_per_s_per_gpu")),
            _fmt(r.get("per_user_tokens_per_s")), _fmt(r.get("ttft_p99_s"), 1000), _fmt(r.get("tpot_p99_s"), 1000, 2),
            _fmt(r.get("slo_attainment"), 100, 1, "%"), "-" if met is None else ("yes" if met else "no")]  # fmt: skip


def _per_gpu(r: dict[str, Any], gpus_known: bool) -> str:
    return f"{_fmt(r.get('output_tokens_per_s_per_gpu'))} per GPU, " if gpus_known else ""


def _verdict(r: dict[str, Any]) -> str:
    if r.get("slo_rule") == "mlperf-p99":
        return "p99 TTFT and p99 TPOT within the preset's bounds (MLPerf's rule)"
    return f"SLO attainment {_fmt(r.get('slo_attainment'), 100, 1, '%')} >= {_fmt(r.get('slo_target'), 100, 0, '%')}"


def headline(records: list[dict[str, Any]], gpus_known: bool = True) -> list[str]:
    """The run's last line(s): the best load point meeting the SLO, else the highest throughput (per GPU only
    when the GPUs serving are known)."""
    best = best_point(records)
    if best is not None:
        return [f"best load point meeting the SLO: {best['label']}: {_fmt(best.get('output_tokens_per_s'))} output "
                f"tok/s ({_per_gpu(best, gpus_known)}{_fmt(best.get('per_user_tokens_per_s'))} tok/s/user), "
                f"{_verdict(best)}"]  # fmt: skip
    out = ["no load point met the SLO"] if any(r.get("slo_met") is not None for r in records) else []
    ok = [r for r in records if r.get("status") == "ok"]
    if ok:
        top = max(ok, key=lambda r: r.get("output_tokens_per_s") or 0.0)
        out.append(f"{'highest throughput' if len(ok) > 1 else 'load point'}: {top['label']}: "
                   f"{_fmt(top.get('output_tokens_per_s'))} output tok/s "
                   f"({_per_gpu(top, gpus_known)}{_fmt(top.get('per_user_tokens_per_s'))} tok/s/user)")  # fmt: skip
    return out
