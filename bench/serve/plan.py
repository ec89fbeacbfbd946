"""`tokenbench serve`'s flags, checked and resolved before anything is sent: the scenario, the SLO,
the load points (one, a sweep, or an SLO search), and the requests the dataset flags make.

Bad flags raise ValueError (a bad dataset: DatasetError or OSError) with a one-line message naming
the flag; the command turns it into exit 2.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bench.serve import dataset as ds
from bench.serve import sweep
from bench.serve.metrics import parse_goodput
from bench.serve.model import LoadSpec, RequestSpec, Slo
from bench.serve.window import parse_gpu_list


class Plan:
    """The flags, checked and resolved (scenario, SLO preset, sweep), before anything is sent."""

    def __init__(self, f: dict[str, Any]):
        self.f = f
        self.base_url = str(f["base_url"] or "").rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError("--base-url: give the server's URL, e.g. http://127.0.0.1:8000")
        if f["dataset_name"] not in ("random", "sharegpt", "prefix_repetition"):
            raise ValueError(f"--dataset-name {f['dataset_name']!r}: expected random, sharegpt or prefix_repetition")
        if f["dataset_name"] == "sharegpt" and f["dataset_path"] is None:
            raise ValueError("--dataset-name sharegpt needs --dataset-path FILE")
        if not (f["request_rate"] > 0 and f["burstiness"] > 0 and f["ready_check_timeout_sec"] >= 0):
            raise ValueError("--request-rate and --burstiness must be > 0")
        if not 0 <= f["random_range_ratio"] < 1:
            raise ValueError(f"--random-range-ratio {f['random_range_ratio']:g}: must be >= 0 and < 1")
        if f["ready_check_timeout_sec"] == 0 and not f["model"]:
            raise ValueError("--ready-check-timeout-sec 0 skips GET /v1/models: give --model")
        if f["ignore_eos"] is None:  # vLLM's default: the random dataset ignores EOS, so outputs are full length
            f["ignore_eos"] = f["dataset_name"] == "random"
        self.energy_gpus = parse_gpu_list(f["energy_gpus"])
        self.scenario = sweep.scenario(f["scenario"]) if f["scenario"] else None
        if self.scenario:
            s = self.scenario
            f.update(random_input_len=s.input_len, random_output_len=s.output_len, random_range_ratio=s.range_ratio)
        self._slo(f)
        self.percentile_metrics = tuple(m.strip() for m in f["percentile_metrics"].split(",") if m.strip())
        bad = [m for m in self.percentile_metrics if m not in ("ttft", "tpot", "itl", "e2el")]
        if bad:
            raise ValueError(f"--percentile-metrics {bad[0]!r}: expected ttft, tpot, itl, e2el")
        asked = [float(p) for p in _percentiles(f["metric_percentiles"])]
        self.shown_percentiles = tuple(dict.fromkeys(asked))  # printed: exactly these, in the order given
        self.percentiles = tuple(sorted({*asked, 90.0, 99.0}))  # computed: the records always hold p90 and p99
        self.spec = LoadSpec(f["request_rate"], f["burstiness"], f["max_concurrency"], f["num_prompts"], f["seed"])
        self.kind, self.points = self._points(f)
        self.save_result, self.processes = f["save_result"], f["client_processes"]
        self.num_requests = f["num_requests"] = max([p.num_prompts for p in self.points] or [f["num_prompts"]])

    def _slo(self, f: dict[str, Any]) -> None:
        """The SLO applied, its rule and what the header says of its source. --goodput wins over a preset."""
        self.slo: Slo | None = None
        self.slo_source: str | None = None
        self.slo_rule = "goodput-attainment"
        self.slo_preset_applied: str | None = None
        extra = list(f.get("goodput_extra") or [])
        if extra and not f["goodput"]:
            raise ValueError(f"unexpected argument {extra[0]!r} (name:value pairs go after --goodput)")
        if f["slo_preset"]:
            self.slo, self.slo_source = sweep.slo_preset(f["slo_preset"])
            self.slo_rule, self.slo_preset_applied = "mlperf-p99", f["slo_preset"]
        if f["goodput"]:
            self.slo = parse_goodput([*f["goodput"], *extra])  # the explicit bounds win over a preset
            self.slo_rule = "goodput-attainment"
            self.slo_source = "--goodput" + (f" (given with --slo-preset {f['slo_preset']}, whose bounds and "
                                             "rule were not applied)" if f["slo_preset"] else "")  # fmt: skip
            self.slo_preset_applied = None

    def _points(self, f: dict[str, Any]) -> tuple[str | None, list[LoadSpec]]:
        chosen = [k for k in ("concurrency_sweep", "rate_sweep", "slo_search") if f[k]]
        if len(chosen) > 1:
            raise ValueError(f"give one of --concurrency-sweep, --rate-sweep, --slo-search (got {len(chosen)})")
        k = f["prompts_per_concurrency"]
        if k is not None and (f["slo_search"] or (not f["concurrency_sweep"] and f["max_concurrency"] is None)):
            raise ValueError("--prompts-per-concurrency needs --concurrency-sweep or --max-concurrency (not "
                             "--slo-search)")  # fmt: skip
        if f["concurrency_sweep"]:
            specs = sweep.sweep_specs(self.spec, "concurrency", sweep.concurrency_sweep(f["concurrency_sweep"]))
            return "concurrency", [sweep.scaled_prompts(s, k) for s in specs]
        if k is not None:
            self.spec = sweep.scaled_prompts(self.spec, k)
        if f["rate_sweep"]:
            return "rate", sweep.sweep_specs(self.spec, "rate", sweep.parse_numbers(f["rate_sweep"], "--rate-sweep",
                                                                                   integer=False))  # fmt: skip
        if f["slo_search"]:
            if f["slo_search"] not in ("rate", "concurrency"):
                raise ValueError(f"--slo-search {f['slo_search']!r}: expected rate or concurrency")
            if self.slo is None:
                raise ValueError("--slo-search needs an SLO: --goodput ttft:MS tpot:MS or --slo-preset NAME")
            if not f["slo_search_high"] or not 0 < f["slo_search_low"] < f["slo_search_high"]:
                raise ValueError("--slo-search needs 0 < --slo-search-low < --slo-search-high")
            return "slo_search", []
        return None, [self.spec]


def _percentiles(text: str) -> list[float]:
    values = []
    for item in (x.strip() for x in text.split(",")):
        try:
            p = float(item)
        except ValueError:
            raise ValueError(f"--metric-percentiles: {item!r} is not a number (e.g. 50,90,99)") from None
        if not 0 < p < 100:
            raise ValueError(f"--metric-percentiles: {item} must be above 0 and below 100")
        values.append(p)
    return values


def input_len(f: dict[str, Any]) -> int | None:
    return {"random": f["random_input_len"], "prefix_repetition": f["prefix_repetition_prefix_len"]
            + f["prefix_repetition_suffix_len"]}.get(f["dataset_name"])  # fmt: skip


def output_len(f: dict[str, Any]) -> int | None:
    return {"random": f["random_output_len"], "prefix_repetition": f["prefix_repetition_output_len"],
            "sharegpt": f["sharegpt_output_len"]}.get(f["dataset_name"])  # fmt: skip


def requests_for(f: dict[str, Any], seed: int) -> list[RequestSpec]:
    """The load point's requests from the dataset flags (the same seed gives the same requests);
    DatasetError or OSError on a bad dataset. --ignore-eos applies to every dataset, as in vLLM."""
    n = f.get("num_requests") or f["num_prompts"]  # a sweep scaled by --prompts-per-concurrency needs the most
    if f["dataset_name"] == "sharegpt":
        made = ds.sharegpt_requests(f["dataset_path"], n, seed=seed, output_len=f["sharegpt_output_len"])
    elif f["dataset_name"] == "prefix_repetition":
        made = ds.prefix_repetition_requests(n, prefix_len=f["prefix_repetition_prefix_len"],
                                             suffix_len=f["prefix_repetition_suffix_len"],
                                             num_prefixes=f["prefix_repetition_num_prefixes"],
                                             output_len=f["prefix_repetition_output_len"], seed=seed)  # fmt: skip
    else:
        made = ds.random_requests(n, f["random_input_len"], f["random_output_len"], range_ratio=f["random_range_ratio"],
                                  prefix_len=f["random_prefix_len"], seed=seed, ignore_eos=f["ignore_eos"])  # fmt: skip
    return [replace(r, ignore_eos=True) for r in made] if f["ignore_eos"] else made
