"""vLLM interchange: the JSON `vllm bench serve --save-result` writes, read into records and written from them.

vLLM's file (vllm/benchmarks/serve.py) holds the run's setup (date, backend, endpoint_type, label,
model_id, tokenizer_id, num_prompts, request_rate as a number or "inf", burstiness,
max_concurrency), the results (duration, completed, failed, total_input_tokens,
total_output_tokens, request_throughput, request_goodput, output_throughput,
total_token_throughput, max_output_tokens_per_s, max_concurrent_requests) and for each metric in
ttft, tpot, itl, e2el: mean_{m}_ms, median_{m}_ms, std_{m}_ms and p{P}_{m}_ms per asked percentile.
It always writes two per-request lists, `latencies` and `queue_times` (0 for a failed request); with
--save-detailed it adds input_lens, output_lens, ttfts, itls, start_times, errors, generated_texts.
--append-result puts several such objects in one file, one per line. vLLM's `label` is the user's
--label (null by default), not tokenbench's load label: it is written null, and an import labels a
point "vllm LABEL-or-backend, conc N" once.

Times there are milliseconds (the lists: seconds); tokenbench's records hold seconds.
"""

from __future__ import annotations

import itertools
import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.measure.stats import summarize
from bench.results.schema import SCHEMA_VERSION, check_record, parse_json
from bench.results.writer import RunWriter, finite_json, new_run_id, utc_now
from bench.serve.records import METRICS, WORKLOAD_VERSION

VLLM_METRICS = ("ttft", "tpot", "itl", "e2el")
ALWAYS = ("latencies", "queue_times")  # per-request lists vLLM writes with or without --save-detailed
DETAILED = ("input_lens", "output_lens", "ttfts", "itls", "start_times", "errors", "generated_texts")


class VllmJsonError(ValueError):
    """A file that is not vLLM's result JSON; the message is one line naming the file."""


def _p_word(p: float) -> str:
    return str(int(p)) if int(p) == p else str(p)  # vLLM's key: p99, p99.9


def _ms(value: Any) -> float | None:
    return value * 1000 if isinstance(value, (int, float)) and math.isfinite(value) else None


def to_vllm(
    record: dict[str, Any], requests: list[dict[str, Any]] | None = None, detailed: bool = True
) -> dict[str, Any]:
    """vLLM's --save-result keys for one serve record; with `requests` (sidecar lines), the lists vLLM always
    writes (latencies, queue_times), and with `detailed` the --save-detailed lists too."""
    endpoint = str(record.get("param_endpoint") or "/v1/completions")
    rate = record.get("param_request_rate")
    started = record.get("started_at") or utc_now()
    date = datetime.fromisoformat(str(started).replace("Z", "+00:00")).strftime("%Y%m%d-%H%M%S")
    out: dict[str, Any] = {
        "date": date, "endpoint_type": "openai-chat" if endpoint.endswith("/chat/completions") else "openai",
        "label": None, "model_id": record.get("param_server_model"),
        "tokenizer_id": record.get("param_server_model"), "num_prompts": record.get("param_num_prompts"),
        "request_rate": "inf" if rate is None else rate, "burstiness": record.get("param_burstiness"),
        "max_concurrency": record.get("param_max_concurrency"), "duration": record.get("duration_s"),
        "completed": record.get("requests_completed"), "failed": record.get("requests_failed"),
        "total_input_tokens": record.get("input_tokens_total"),
        "total_output_tokens": record.get("output_tokens_total"),
        "request_throughput": record.get("request_throughput"), "request_goodput": record.get("goodput"),
        "output_throughput": record.get("output_throughput"),
        "total_token_throughput": record.get("total_token_throughput"),
        "max_output_tokens_per_s": record.get("max_output_tokens_per_s"),
        "max_concurrent_requests": record.get("max_concurrent_requests"),
        "tokenbench_label": record.get("label"), "tokenbench_run_id": record.get("run_id"),
        "tokenbench_seq": record.get("seq"),
    }  # fmt: skip
    out["backend"] = out["endpoint_type"]
    extra = record.get("latency_percentiles_s") or {}
    for m in VLLM_METRICS:
        out[f"mean_{m}_ms"] = _ms(record.get(f"{m}_mean_s"))
        out[f"median_{m}_ms"] = _ms(record.get(f"{m}_median_s"))
        out[f"std_{m}_ms"] = _ms(record.get(f"{m}_std_s"))
        for key, value in sorted(extra.items()):
            if key.startswith(f"{m}_p"):
                out[f"p{key[len(m) + 2 :]}_{m}_ms"] = _ms(value)
        out[f"p90_{m}_ms"] = _ms(record.get(f"{m}_p90_s"))
        out[f"p99_{m}_ms"] = _ms(record.get(f"{m}_p99_s"))
    if requests is not None:
        lists = _detailed(requests)
        out.update({k: v for k, v in lists.items() if detailed or k in ALWAYS})
    return finite_json(out)


def _detailed(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """vLLM's --save-detailed lists from the sidecar's request lines (one entry per request, in index order)."""
    lines = sorted(lines, key=lambda r: r.get("index", 0))
    gaps = [[b - a for a, b in itertools.pairwise(t)] for t in (r.get("chunk_times_s") or [] for r in lines)]
    return {
        "input_lens": [r.get("input_tokens") or 0 for r in lines],
        "output_lens": [r.get("output_tokens") or 0 if r.get("ok") else 0 for r in lines],
        "ttfts": [r.get("ttft_s") or 0.0 for r in lines],
        "itls": gaps,
        "latencies": [r.get("e2el_s") or 0.0 if r.get("ok") else 0.0 for r in lines],
        "start_times": [r.get("sent_s") for r in lines],
        "queue_times": [max(0.0, (r.get("sent_s") or 0.0) - (r.get("scheduled_s") or 0.0)) for r in lines],
        "errors": ["" if r.get("ok") else str(r.get("error") or "failed") for r in lines],
        "generated_texts": ["" for _ in lines],  # tokenbench does not keep the text
    }


def _num(obj: dict[str, Any], key: str) -> float | None:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def _int(obj: dict[str, Any], key: str) -> int | None:
    v = _num(obj, key)
    return int(v) if v is not None else None


def _s(obj: dict[str, Any], key: str) -> float | None:
    v = _num(obj, key)
    return v / 1000 if v is not None else None


def _latency_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """{m}_mean_s ... from vLLM's {stat}_{m}_ms keys; other percentiles into latency_percentiles_s."""
    out: dict[str, Any] = {}
    extra: dict[str, float] = {}
    for m in VLLM_METRICS:
        out.update({f"{m}_mean_s": _s(obj, f"mean_{m}_ms"), f"{m}_median_s": _s(obj, f"median_{m}_ms"),
                    f"{m}_std_s": _s(obj, f"std_{m}_ms"), f"{m}_p90_s": _s(obj, f"p90_{m}_ms"),
                    f"{m}_p99_s": _s(obj, f"p99_{m}_ms")})  # fmt: skip
        for key in obj:
            if key.startswith("p") and key.endswith(f"_{m}_ms") and key not in (f"p90_{m}_ms", f"p99_{m}_ms"):
                word = key[1 : -len(f"_{m}_ms")]
                value = _s(obj, key)
                if value is not None and word.replace(".", "", 1).isdigit():
                    extra[f"{m}_p{float(word):g}"] = value
    if extra:
        out["latency_percentiles_s"] = extra
    return out


def _samples(obj: dict[str, Any]) -> dict[str, Any]:
    """samples_s from vLLM's `latencies` (always written; successful requests only: a failed one is 0 or has an
    error), with their statistics."""
    lat, errors = obj.get("latencies"), obj.get("errors")
    if not isinstance(lat, list):
        return {}
    errs = errors if isinstance(errors, list) and len(errors) == len(lat) else [""] * len(lat)
    samples = [float(x) for x, e in zip(lat, errs, strict=False)
               if isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 and not e]  # fmt: skip
    if not samples:
        return {}
    s = summarize(samples)
    return {"samples_s": samples, "n_samples": s.n, "time_median_s": s.median, "time_mean_s": s.mean,
            "time_cv": s.cv if math.isfinite(s.cv) else None, "cv_threshold": None,
            "unstable": None}  # fmt: skip  # a load's spread, not noise (bench/serve/records.py)


def from_vllm(obj: dict[str, Any], source: str, run_id: str, seq: int, num_gpus: int = 1) -> dict[str, Any]:
    """One vLLM result object as a serve record (`source`: the file it came from)."""
    completed, prompts = _int(obj, "completed"), _int(obj, "num_prompts")
    failed = _int(obj, "failed")
    if failed is None and completed is not None and prompts is not None:
        failed = max(0, prompts - completed)
    rate = obj.get("request_rate")
    rate_v = None if rate in ("inf", None) or not isinstance(rate, (int, float)) or math.isinf(rate) else float(rate)
    duration, goodput = _num(obj, "duration"), _num(obj, "request_goodput")
    out_tps = _num(obj, "output_throughput")
    total = (completed or 0) + (failed or 0)
    good = round(goodput * duration) if goodput is not None and duration else None
    median_tpot = _s(obj, "median_tpot_ms")
    chat = str(obj.get("endpoint_type") or obj.get("backend") or "").endswith("chat")
    conc = obj.get("max_concurrency")
    load = f"conc {conc}" if conc is not None else f"rate {rate if rate_v is None else f'{rate_v:g}'}/s"
    label = _label(obj, load)
    ok = bool(completed)
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "seq": seq, "workload": "serve",
        "workload_version": WORKLOAD_VERSION, "family": "serve", "label": label,
        "param_dataset": obj.get("dataset_name") if isinstance(obj.get("dataset_name"), str) else None,
        "param_request_rate": rate_v, "param_burstiness": _num(obj, "burstiness"),
        "param_max_concurrency": conc if isinstance(conc, int) and not isinstance(conc, bool) else None,
        "param_num_prompts": prompts, "param_server_model": str(obj.get("model_id") or "") or None,
        "param_endpoint": "/v1/chat/completions" if chat else "/v1/completions",
        "status": "ok" if ok else "failed", "reason": None if ok else "the vLLM result has no completed request",
        "started_at": _date(obj.get("date")), "finished_at": None, "imported_from": source,
        "requests_completed": completed, "requests_failed": failed,
        "failure_rate": failed / total if failed is not None and total else None,
        "input_tokens_total": _int(obj, "total_input_tokens"), "output_tokens_total": _int(obj, "total_output_tokens"),
        "output_tokens_source": "usage", "duration_s": duration,
        "request_throughput": _num(obj, "request_throughput"), "output_throughput": out_tps,
        "total_token_throughput": _num(obj, "total_token_throughput"), "output_tokens_per_s": out_tps,
        "per_user_tokens_per_s": 1 / median_tpot if median_tpot else None, "num_gpus": num_gpus,
        "output_tokens_per_s_per_gpu": out_tps / num_gpus if out_tps is not None else None,
        "max_concurrent_requests": _int(obj, "max_concurrent_requests"),
        "max_output_tokens_per_s": _num(obj, "max_output_tokens_per_s"),
        "hostname": "vllm import", "device": "unknown", "device_kind": "unknown",
        "device_name": str(obj.get("model_id") or "vllm import"),
        "goodput": goodput, "good_requests": good,
        "slo_attainment": good / total if good is not None and total else None,
        "energy_j": None, "energy_reason": "imported from vllm bench serve, which measures no energy",
    }  # fmt: skip
    record.update(_latency_fields(obj))
    record.update(_samples(obj))
    return record


def _label(obj: dict[str, Any], load: str) -> str:
    """The record's label: tokenbench's own where the file came from tokenbench, else 'vllm LABEL, LOAD',
    the load not repeated when the label already names it (an older tokenbench file put its label there)."""
    if isinstance(obj.get("tokenbench_label"), str) and obj["tokenbench_label"]:
        return str(obj["tokenbench_label"])
    name = f"vllm {obj.get('label') or obj.get('backend') or ''}".strip()
    return name if load in name else f"{name}, {load}"


def _date(value: Any) -> str | None:
    """vLLM's 'YYYYmmdd-HHMMSS' (the benchmarking machine's local time, no zone written) in utc_now's format,
    read as this machine's local time: the same zone where the import runs on the benchmarking host."""
    try:
        local = datetime.strptime(str(value), "%Y%m%d-%H%M%S").astimezone()
    except ValueError:
        return None
    return local.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def read_objects(path: Path, text: str) -> list[dict[str, Any]]:
    """The result objects of a vLLM file: one JSON object, or one per line (--append-result)."""
    try:
        parsed = [parse_json(text)]
    except ValueError:
        try:
            parsed = [parse_json(line) for line in text.splitlines() if line.strip()]
        except ValueError as e:
            raise VllmJsonError(f"{path}: not vLLM result JSON ({getattr(e, 'msg', e)})") from None
    if not parsed or not all(isinstance(o, dict) for o in parsed):
        raise VllmJsonError(f"{path}: not vLLM result JSON (expected an object per result)")
    for i, o in enumerate(parsed):
        missing = [k for k in ("duration", "completed") if k not in o]
        if missing:
            raise VllmJsonError(f"{path}: result {i + 1} has no {', '.join(missing)}: not vLLM bench serve output")
    return parsed


def import_file(path: Path, text: str, out_dir: Path, num_gpus: int = 1) -> tuple[RunWriter, list[dict[str, Any]]]:
    """Write a tokenbench run (header with `imported_from`, a record per result) from a vLLM file's text."""
    objects = read_objects(path, text)
    run_id = new_run_id(datetime.now(timezone.utc))
    records = [from_vllm(o, str(path), run_id, i, num_gpus) for i, o in enumerate(objects)]
    for i, r in enumerate(records):
        why = check_record(r)
        if why:
            raise VllmJsonError(f"{path}: result {i + 1} does not make a valid record: {why}")
    first = objects[0]
    header = {"suite": "serve", "started_at": utc_now(), "imported_from": str(path), "seed": None,
              "serve": {"base_url": None, "endpoint": records[0]["param_endpoint"], "models": None,
                        "server_model": first.get("model_id"), "dataset": first.get("dataset_name"),
                        "command": "vllm bench serve"}}  # fmt: skip
    writer = RunWriter(out_dir, run_id, header)
    for r in records:
        writer.append(r)
    writer.finish("complete", utc_now())
    return writer, records


def write_results(
    path: Path, records: list[dict[str, Any]], sidecar: Path | None = None, detailed: bool = False
) -> None:
    """--save-result: one vLLM result object per record, a line each (as vLLM's --append-result writes them);
    from `sidecar` (the run's requests file) the lists vLLM always writes, and with `detailed` the
    --save-detailed lists of each point's requests."""
    lines = None
    if sidecar is not None:
        with open(sidecar, encoding="utf-8") as fh:
            lines = [json.loads(x) for x in fh if x.strip()]
    with open(path, "w", encoding="utf-8") as fh:
        for r in records:
            mine = [x for x in lines if x.get("seq") == r["seq"]] if lines is not None else None
            fh.write(dumps(to_vllm(r, mine, detailed)) + "\n")


def dumps(obj: dict[str, Any]) -> str:
    """JSON text of a vLLM result object (finite numbers only, as vLLM's own readers expect)."""
    return json.dumps(finite_json(obj), allow_nan=False)


__all__ = ["METRICS", "VllmJsonError", "dumps", "from_vllm", "import_file", "read_objects", "to_vllm"]
