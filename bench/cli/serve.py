"""`tokenbench serve`: load against an OpenAI-compatible server, with vLLM's flag names; records per load point.

Flags are checked before anything is sent; no answer from GET /v1/models within --ready-check-timeout-sec,
or a refusal (401/403/404, at once), is one line, exit 2, nothing written (0 skips the check, as vLLM).
--api-key (env OPENAI_API_KEY) goes in every request and is never written. Requests go to
OUT/<run-id>.requests.jsonl as they finish, each point's record to OUT/<run-id>.jsonl. Ctrl-C: the point
stops, header interrupted, exit 130; exit 1 when no load point is ok. bench/serve/README.md has it all.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from bench.cli.console import err, fail, line, out, warn
from bench.text import plural

if TYPE_CHECKING:
    from bench.serve.plan import Plan


O = typer.Option  # noqa: E741 - the flags below read as a table


def serve(
    base_url: Annotated[str | None, O("--base-url", help="server, e.g. http://127.0.0.1:8000")] = None,
    endpoint: Annotated[str, O(help="API path; /v1/chat/completions for chat")] = "/v1/completions",
    model: Annotated[str | None, O(help="model name sent; default: the first id GET /v1/models returns")] = None,
    api_key: Annotated[str | None, O(envvar="OPENAI_API_KEY", help="bearer token; never written")] = None,
    request_rate: Annotated[float, O(help="requests/s (gamma arrivals); inf sends all at once")] = math.inf,
    burstiness: Annotated[float, O(help="gamma shape of the gaps; 1 = Poisson, lower is burstier")] = 1.0,
    max_concurrency: Annotated[int | None, O(min=1, help="most requests in flight at once")] = None,
    num_prompts: Annotated[int, O(min=1, max=1_000_000, help="requests per load point")] = 1000,
    num_warmups: Annotated[int, O(min=0, help="requests sent first and not measured")] = 0,
    seed: Annotated[int, O(min=0, max=2**31 - 1, help="seed of the dataset and the arrivals")] = 0,
    dataset_name: Annotated[str, O(help="random | sharegpt | prefix_repetition")] = "random",
    dataset_path: Annotated[Path | None, O(help="sharegpt: the ShareGPT-format JSON file")] = None,
    random_input_len: Annotated[int, O(min=1, help="random: prompt tokens")] = 1024,
    random_output_len: Annotated[int, O(min=1, help="random: output tokens (max_tokens)")] = 128,
    random_range_ratio: Annotated[float, O(help="random: lengths within (1 +- r) x, 0 <= r < 1")] = 0.0,
    random_prefix_len: Annotated[int, O(min=0, help="random: a shared prefix of this many tokens")] = 0,
    sharegpt_output_len: Annotated[int | None, O(min=1, help="sharegpt: override output lengths")] = None,
    prefix_repetition_prefix_len: Annotated[int, O(min=1, help="prefix_repetition: prefix tokens")] = 256,
    prefix_repetition_suffix_len: Annotated[int, O(min=1, help="prefix_repetition: suffix tokens")] = 256,
    prefix_repetition_num_prefixes: Annotated[int, O(min=1, help="prefix_repetition: distinct prefixes")] = 10,
    prefix_repetition_output_len: Annotated[int, O(min=1, help="prefix_repetition: output tokens")] = 128,
    ignore_eos: Annotated[bool | None, O(help="send vLLM's ignore_eos; default: on for random, as vLLM")] = None,
    goodput: Annotated[list[str] | None, O(help="SLO for goodput: --goodput ttft:MS tpot:MS e2el:MS")] = None,
    percentile_metrics: Annotated[str, O(help="metrics printed with percentiles")] = "ttft,tpot,itl",
    metric_percentiles: Annotated[str, O(help="percentiles printed, e.g. 50,90,99")] = "99",
    num_gpus: Annotated[int | None, O(min=1, help="GPUs serving; default: the GPUs NVML sees, else 1")] = None,
    energy_gpus: Annotated[str | None, O(help="NVML indices in the energy, e.g. 0,1 (README)")] = None,
    ready_check_timeout_sec: Annotated[float, O(min=0, help="wait this long for GET /v1/models")] = 600.0,
    request_timeout: Annotated[float, O(min=0.001, help="seconds before one request is failed")] = 600.0,
    max_failure_rate: Annotated[float, O(min=0, max=1, help="a point with more failures is failed")] = 0.05,
    slo_target: Annotated[float, O(min=0, max=1, help="share of requests that must meet the SLO")] = 0.99,
    slo_preset: Annotated[str | None, O(help="SLO from scenarios.toml, e.g. llama3.1-8b")] = None,
    scenario: Annotated[str | None, O(help="lengths from scenarios.toml: 1k-1k, 1k-8k, 8k-1k")] = None,
    client_processes: Annotated[int, O(min=1, max=64, help="client processes sharing the load")] = 1,
    out_dir: Annotated[Path, O("--out", "-o", help="directory for <run-id>.jsonl, .json, .requests.jsonl")] = Path(
        "results"
    ),
    save_result: Annotated[bool, O(help="also write vLLM's --save-result JSON (one object per point)")] = False,
    save_detailed: Annotated[bool, O(help="with --save-result: the per-request lists too")] = False,
    result_filename: Annotated[
        Path | None, O(help="where --save-result writes; default OUT/<run-id>.vllm.json")
    ] = None,
    concurrency_sweep: Annotated[str | None, O(help="'N': doublings 1..N at rate inf; or '1,4,16'")] = None,
    prompts_per_concurrency: Annotated[int | None, O(min=1, max=10_000, help="K: K x C requests at cap C")] = None,
    rate_sweep: Annotated[str | None, O(help="request rates, e.g. '1,2,4,8'")] = None,
    slo_search: Annotated[str | None, O(help="rate | concurrency: highest load meeting the SLO")] = None,
    slo_search_low: Annotated[float, O(min=0, help="--slo-search low bound")] = 1.0,
    slo_search_high: Annotated[float | None, O(min=0, help="--slo-search high bound")] = None,
    slo_search_points: Annotated[int, O(min=2, max=64, help="--slo-search: most load points tried")] = 8,
    import_vllm: Annotated[Path | None, O(help="read a vllm bench serve --save-result JSON into OUT")] = None,
    goodput_extra: Annotated[list[str] | None, typer.Argument(hidden=True, metavar="NAME:MS")] = None,
) -> None:
    """Load an OpenAI-compatible server; print vLLM's results block per point and record every point."""
    if import_vllm is not None:
        _import(import_vllm, out_dir, num_gpus or 1)
        return
    plan = _plan(dict(locals()))
    _run(_Session.open(plan))


def _check_out(path: Path) -> None:
    from bench.results.writer import check_out_dir

    why = check_out_dir(path)
    if why:
        fail(f"--out: {why}")


def _run(run: _Session) -> None:
    """Every load point, the end of the header, the summary table and the headline; the exit code."""
    err.print(f"tokenbench serve: {run.plan.base_url}, model {run.server_model}, run {run.writer.run_id}",
              markup=False, highlight=False, soft_wrap=True)  # fmt: skip
    with _StopOnSigint(run.stop):
        try:
            run.warm_up()
            run.execute()
        except KeyboardInterrupt:  # a second Ctrl-C: stop now, the finished points are kept
            run.stop.set()
        except Exception as e:  # a full disk, a bug: the header must not stay `running`
            with contextlib.suppress(Exception):
                run.files.finish("failed", f"{type(e).__name__}: {e}")
            raise
    records = run.records
    state = run.finish()
    if len(records) > 1:
        for table in _summary_tables(records):
            out.print(table)
    from bench.serve.sweep import headline

    for text in headline(records, run.gpus_known):
        line(text)
    if run.plan.save_result:
        line(f"vLLM-format results: {run.save_vllm()}")
    line(f"{plural(len(records), 'load point')} in {run.writer.records_path}; requests in {run.log.path}; "
         f"run header {run.writer.header_path}")  # fmt: skip
    if state == "interrupted":
        err.print(f"tokenbench: interrupted: {plural(len(records), 'load point')} kept", markup=False, highlight=False)
        raise typer.Exit(130)
    if not any(r["status"] == "ok" for r in records):
        raise typer.Exit(1)


def _print_point(run: _Session, rec: dict[str, Any], stats: Any) -> None:
    from bench.serve.metrics import format_block

    gpus = run.num_gpus if run.gpus_known else None
    for row in format_block(stats, run.plan.percentile_metrics, gpus, run.plan.shown_percentiles).splitlines():
        line(row)
    if rec["status"] != "ok":
        warn(f"load point {rec['seq']} ({rec['label']}) failed: {rec['reason']}")
    if rec.get("client_limited"):
        warn(f"load point {rec['seq']}: the client limited the load: {rec.get('client_limited_reason')}")
    if rec.get("contended"):
        warn(f"load point {rec['seq']}: the host was busy (other processes starved the client; latencies are "
             f"inflated, rerun on a quiet host): {rec.get('contention_reason')}")  # fmt: skip


def _summary_tables(records: list[dict[str, Any]]) -> list[Any]:
    """The load points side by side, made to fit the terminal (no figure or header cut)."""
    from bench.report.terminal import fit
    from bench.serve.sweep import SUMMARY_COLUMNS, summary_row
    from bench.text import Grid

    grid = Grid("tokenbench serve: load points", list(SUMMARY_COLUMNS),
                right={c for c in SUMMARY_COLUMNS if c not in ("load", "status")})  # fmt: skip
    for r in records:
        grid.add(*summary_row(r))
    return fit(grid, out.width)


def _import(path: Path, out_dir: Path, num_gpus: int) -> None:
    """--import-vllm FILE: a tokenbench run from vLLM's result JSON."""
    from bench.results import files
    from bench.serve.vllm_json import VllmJsonError, import_file

    _check_out(out_dir)
    try:
        text = files.read_text_bounded(path, files.limit_bytes(), "vLLM result JSON")
        writer, records = import_file(path, text, out_dir, num_gpus)
    except (OSError, VllmJsonError) as e:
        fail(f"--import-vllm: {e}")
    n = plural(len(records), "load point")
    line(f"imported {n} from {path}: {writer.records_path}; run header {writer.header_path}")


def _plan(flags: dict[str, Any]) -> Plan:
    from bench.serve.dataset import DatasetError
    from bench.serve.plan import Plan

    try:
        return Plan(flags)
    except (ValueError, DatasetError) as e:
        fail(str(e))


class _StopOnSigint:
    """The first Ctrl-C sets `stop` (the load point ends within a fraction of a second); a second raises."""

    def __init__(self, stop: Any):
        self.stop = stop

    def _handler(self, _signum: int, _frame: object) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt
        self.stop.set()
        err.print("tokenbench: stopping the load point (Ctrl-C again to stop at once)", markup=False)

    def __enter__(self) -> _StopOnSigint:
        import signal

        self._before = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        signal.signal(signal.SIGINT, self._before)


class _Session:
    """A serve run: the server (ready, its models), the requests, the files, and the points run so far."""

    def __init__(self, plan: Plan, endpoint: Any, models: dict[str, Any] | None, requests: list[Any]):
        import sys
        import threading

        from bench.device import nvml
        from bench.results.writer import utc_now
        from bench.serve import plan as plan_mod
        from bench.serve import records as rec
        from bench.serve import window as win

        self.plan, self.endpoint, self.requests = plan, endpoint, requests
        self.stop = threading.Event()
        f = plan.f
        ids = model_ids(models)
        self.server_model = listed_model(ids, f["model"])
        if models is not None and f["model"] and self.server_model is None:
            warn(f"--model {f['model']!r} is not among the models {plan.base_url}/v1/models lists "
                 f"({', '.join(ids) or 'none'}): the requests may fail")  # fmt: skip
        sources, why = win.visible_gpus()
        gpu_names = nvml.gpu_names() if sources else []
        self.gpus_known = bool(f["num_gpus"] or sources)
        self.num_gpus = f["num_gpus"] or len(sources) or 1
        picked: list[int] = []
        if sources:
            try:
                picked, why = win.pick_gpus(len(sources), plan.energy_gpus, f["num_gpus"])
            except ValueError as e:
                fail(str(e))
            sources = [sources[i] for i in picked]
        argv = redact(sys.argv[1:])
        self.writer_header = {
            "suite": "serve", "seed": f["seed"], "started_at": utc_now(), "argv": argv,
            "environment": rec.client_host(gpu_names), "slo_source": plan.slo_source, "slo_rule": plan.slo_rule,
            "serve": {"base_url": plan.base_url, "endpoint": f["endpoint"], "models": models, "model_ids": ids,
                      "model_sent": endpoint.model, "server_model": self.server_model, "dataset": f["dataset_name"],
                      "ready_check": "skipped (--ready-check-timeout-sec 0)" if models is None else "GET /v1/models",
                      "energy_gpus": picked if sources else None,
                      "command": " ".join(["tokenbench", *argv])},
        }  # fmt: skip
        self.files = rec.ServeFiles(f["out_dir"], self.writer_header)
        self.writer, self.log = self.files.writer, self.files.log
        pairs = (("sweep", plan.kind), ("scenario", f["scenario"]), ("slo_preset", plan.slo_preset_applied),
                 ("num_warmups", f["num_warmups"]))  # fmt: skip
        extra = {k: v for k, v in pairs if v is not None}
        lens = plan_mod.input_len(f), plan_mod.output_len(f)
        ctx = rec.PointContext(self.run_id, 0, f["seed"], f["dataset_name"], *lens,
                               f["random_range_ratio"] if f["dataset_name"] == "random" else None, f["endpoint"],
                               self.server_model, self.num_gpus, f["slo_target"], f["max_failure_rate"],
                               rec.client_host(gpu_names), extra, plan.slo_rule)  # fmt: skip
        self.runner = win.PointRunner(endpoint, requests, self.files, ctx, win.LoadWindow(sources, why), self.stop,
                                      plan.percentiles, plan.slo, f["request_timeout"], plan.processes,
                                      on_point=lambda record, stats: _print_point(self, record, stats))  # fmt: skip

    @property
    def run_id(self) -> str:
        return self.files.run_id

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.files.records

    @classmethod
    def open(cls, plan: Plan) -> _Session:
        """Ready check (one line and exit 2 when the server does not answer), then the requests, then the files."""
        from bench.serve.client import Endpoint, ServerNotReady, ready_check

        f = plan.f
        probe = Endpoint(plan.base_url, f["endpoint"], f["model"], f["api_key"])
        models: dict[str, Any] | None = None
        if f["ready_check_timeout_sec"] > 0:  # 0 skips the check, as vLLM (the plan then needs --model)
            try:
                models = ready_check(probe, f["ready_check_timeout_sec"])
            except ServerNotReady as e:
                fail(str(e))
        ids = model_ids(models)
        model = f["model"] or (ids[0] if ids else None)
        if not model:
            fail(f"{plan.base_url}/v1/models lists no model; give --model")
        requests = _requests(f, f["seed"])
        _check_out(Path(f["out_dir"]))  # created only now: a failed check leaves no empty directory
        return cls(plan, Endpoint(plan.base_url, f["endpoint"], str(model), f["api_key"]), models, requests)

    def warm_up(self) -> None:
        """--num-warmups requests before the first point, at once under the point's cap; not recorded."""
        n = self.plan.f["num_warmups"]
        if n and not self.stop.is_set():
            from dataclasses import replace

            from bench.serve.load import run_load_point

            spec = replace(self.plan.spec, request_rate=math.inf, num_prompts=n)
            run_load_point(self.endpoint, _requests({**self.plan.f, "num_prompts": n, "num_requests": n},
                                                    self.plan.f["seed"] + 1),
                           spec, request_timeout_s=self.plan.f["request_timeout"], stop=self.stop)  # fmt: skip

    def execute(self) -> None:
        from bench.serve import sweep

        plan, f = self.plan, self.plan.f
        if plan.kind != "slo_search":
            sweep.run_sweep(plan.points, self.runner, self.stop.is_set)
            return
        integer = f["slo_search"] == "concurrency"
        kind: Literal["concurrency", "rate"] = "concurrency" if integer else "rate"

        def meets(x: float) -> bool:
            record = self.runner(sweep.sweep_specs(plan.spec, kind, [x])[0])
            return record["status"] == "ok" and bool(record.get("slo_met"))

        found = sweep.slo_search(meets, f["slo_search_low"], f["slo_search_high"], f["slo_search_points"], integer,
                                 self.stop.is_set)  # fmt: skip
        self.writer.header["slo_search"] = {
            "by": kind,
            "tried": found.tried,
            "best": found.best,
            "reason": found.reason,
        }

    def finish(self) -> str:
        state = "interrupted" if self.stop.is_set() else "complete"
        self.files.finish(state, "interrupted by the user (SIGINT)" if state == "interrupted" else None)
        return state

    def save_vllm(self) -> Path:
        """--save-result: vLLM's JSON keys, one object per load point (a line each, as vLLM's --append-result)."""
        from bench.serve.vllm_json import write_results

        path = self.plan.f["result_filename"] or Path(self.plan.f["out_dir"]) / f"{self.run_id}.vllm.json"
        write_results(path, self.records, self.log.path, detailed=self.plan.f["save_detailed"])
        return path


def model_ids(models: dict[str, Any] | None) -> list[str]:
    """The ids GET /v1/models listed (empty when skipped or none)."""
    data = models.get("data") if isinstance(models, dict) else None
    return [str(m["id"]) for m in data if isinstance(m, dict) and m.get("id")] if isinstance(data, list) else []


def listed_model(ids: list[str], model: str | None) -> str | None:
    """The model as the server reports it: the listed id equal to --model, else the first listed when --model
    is absent; None when --model is not listed."""
    if model is None:
        return ids[0] if ids else None
    return model if model in ids else None


def redact(argv: list[str]) -> list[str]:
    """argv with the --api-key value replaced: a key is never written to a header."""
    out, hide = [], False
    for a in argv:
        if hide:
            out.append("***")
        elif a.startswith("--api-key="):
            out.append("--api-key=***")
        else:
            out.append(a)
        hide = a == "--api-key"
    return out


def _requests(f: dict[str, Any], seed: int) -> list[Any]:
    from bench.serve import dataset as ds
    from bench.serve.plan import requests_for

    try:
        return requests_for(f, seed)
    except (ds.DatasetError, OSError) as e:
        fail(str(e))
