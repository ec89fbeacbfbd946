"""`tokenbench cost` on serve records (one per load point of `tokenbench serve`): $/Mtok output, input
and total per GPU, owned and under each offer, and the headline at the best load point meeting the SLO.

Hand-worked site as in test_cost_cli: owned $1.235137 per useful GPU-hour at 600 W active and 100 W
idle ((0.565068 fixed + 0.6 kW x 0.5 x 0.15 + 0.1 kW x 0.5 x 0.15) / 0.5 utilisation); Acme on-demand $2.00.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.catalog import prices
from bench.cli import app
from bench.cost import subjects
from tests.cost.test_cost_cli import SERVER, SITE

OWNED_HOUR = 1.235137


def serve(seq: int, conc: int, out_tps: float, total_tps: float, *, slo_met: bool | None, slo: bool = True,
          num_gpus: int = 2, **kw) -> dict:  # fmt: skip
    """A load point of a server on `num_gpus` H100s: its throughputs and power are the whole server's."""
    slos = {"slo_ttft_s": 2.0, "slo_tpot_s": 0.2, "slo_e2el_s": None} if slo else {}
    base = {"schema_version": 1, "run_id": "s1", "seq": seq, "status": "ok", "workload": "serve", "family": "serve",
            "label": f"conc {conc}, 1024/1024 random", "device_name": "NVIDIA H100 80GB HBM3", "num_gpus": num_gpus,
            "output_throughput": out_tps, "output_tokens_per_s": out_tps, "total_token_throughput": total_tps,
            "power_mean_w": 600.0 * num_gpus, "idle_power_w": 100.0, "per_user_tokens_per_s": 50.0,
            "slo_met": slo_met, **slos}  # fmt: skip
    return {**base, **kw}


def write(tmp_path: Path, records: list[dict]) -> list[str]:
    results = tmp_path / "results"
    results.mkdir(exist_ok=True)
    (results / "s1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    catalog, site = tmp_path / "mine.toml", tmp_path / "site.toml"
    catalog.write_text(SERVER)
    site.write_text(SITE)
    return [str(results), "--catalog", str(catalog), "--site", str(site)]


def invoke(*args: str):
    return CliRunner().invoke(app, ["cost", *args])


def test_serve_bases_are_per_gpu_and_input_is_total_less_output():
    rec = serve(0, 8, 2000.0, 6000.0, slo_met=True)
    assert subjects.serve_bases(rec) == [("output", 1000.0), ("input", 2000.0), ("total", 3000.0)]
    assert subjects.serve_bases({**rec, "num_gpus": None}) == [("output", 2000.0), ("input", 4000.0),
                                                                ("total", 6000.0)]  # fmt: skip
    assert subjects.serve_bases({**rec, "total_token_throughput": None}) == [("output", 1000.0)]
    assert subjects.serve_bases({**rec, "output_throughput": None, "output_tokens_per_s": None}) == []
    s, why = subjects.subject_of(rec, prices.load())
    assert why is None and s is not None
    assert s.power.active_w == 600.0 and s.num_gpus == 2  # the server's 1200 W over its 2 GPUs
    assert s.slo == "TTFT <= 2000 ms, TPOT <= 200 ms" and s.slo_met is True
    # NVML saw 4 GPUs on the node (energy_gpus): the summed power is their mean x 4
    s4, _ = subjects.subject_of({**rec, "power_mean_w": 2000.0, "energy_gpus": 4}, prices.load())
    assert s4 is not None and s4.power.active_w == 500.0


def test_serve_records_are_priced_like_decode_per_gpu(tmp_path):
    args = write(tmp_path, [serve(0, 8, 2000.0, 6000.0, slo_met=True)])
    result = invoke(*args, "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(io.StringIO(result.stdout))

    def cell(kind: str, scenario: str) -> float:
        return float(rows[(rows.tokens == kind) & (rows.scenario == scenario)].iloc[0].usd_per_mtok)

    # $/Mtok = $ per useful hour / (tokens/s per GPU x 3600 / 1e6): 1000 output, 2000 input, 3000 total per GPU
    assert cell("output", "owned") == pytest.approx(OWNED_HOUR / 3.6, abs=1e-6)  # $0.343094
    assert cell("input", "owned") == pytest.approx(OWNED_HOUR / 7.2, abs=1e-6)
    assert cell("total", "owned") == pytest.approx(OWNED_HOUR / 10.8, abs=1e-6)
    assert cell("output", "acme-od") == pytest.approx(2.0 / 3.6)  # $0.5556
    assert cell("total", "acme-od") == pytest.approx(2.0 / 10.8)
    assert set(rows.power_w) == {600.0} and set(rows.power_from) == {"measured"}


def test_headline_is_the_best_load_point_meeting_the_slo(tmp_path):
    records = [serve(0, 1, 400.0, 800.0, slo_met=True), serve(1, 8, 2000.0, 6000.0, slo_met=True),
               serve(2, 64, 5000.0, 15000.0, slo_met=False)]  # fmt: skip
    args = write(tmp_path, records)
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first == (
        "H100-SXM, #1 conc 8, 1024/1024 random (the best of 3 load points meeting the SLO (TTFT <= 2000 ms, "
        "TPOT <= 200 ms); per GPU of 2), output tokens: cheapest: Acme on-demand $0.56/Mtok; owned $0.34/Mtok "
        "(0.62× rented)"
    )  # 2 / 3.6; 1.235137 / 3.6; 1.235137 / 2
    doc = json.loads(invoke(*args, "--format", "json").stdout)
    cheapest = doc["gpus"]["H100-SXM"]["cheapest"]
    assert cheapest["seq"] == 1 and cheapest["offer"] == "acme-od" and cheapest["tokens"] == "output"
    assert cheapest["usd_per_mtok"] == pytest.approx(2.0 / 3.6)
    assert cheapest["owned_usd_per_mtok"] == pytest.approx(OWNED_HOUR / 3.6, abs=1e-6)
    assert cheapest["owned_over_rented"] == pytest.approx(OWNED_HOUR / 2.0, abs=1e-6)
    assert doc["headline"][0] == first


def test_headline_without_an_slo_is_the_highest_throughput_point_and_says_so(tmp_path):
    records = [serve(0, 1, 400.0, 800.0, slo_met=None, slo=False),
               serve(1, 64, 5000.0, 15000.0, slo_met=True, slo=False)]  # fmt: skip
    first = invoke(*write(tmp_path, records)).stdout.splitlines()[0]
    assert first.startswith("H100-SXM, #1 conc 64, 1024/1024 random (no SLO given: the highest-throughput of 2 load")
    assert "owned $0.14/Mtok" in first  # 1.235137 / (2500 x 3600 / 1e6) = $0.1372


def test_headline_when_no_point_met_the_slo_says_so(tmp_path):
    records = [serve(0, 1, 400.0, 800.0, slo_met=False), serve(1, 64, 5000.0, 15000.0, slo_met=False)]
    first = invoke(*write(tmp_path, records)).stdout.splitlines()[0]
    assert "(no load point met the SLO (TTFT <= 2000 ms, TPOT <= 200 ms): the highest-throughput of 2" in first
    assert first.startswith("H100-SXM, #1 conc 64")


def test_a_serve_record_from_a_client_off_the_gpu_node_is_priced_on_the_gpu_named(tmp_path):
    rec = serve(0, 8, 2000.0, 6000.0, slo_met=True, device_name="Intel Xeon", power_mean_w=None, idle_power_w=None)
    args = write(tmp_path, [rec])
    assert "not a catalog GPU" in invoke(*args).output  # without --gpu: the client's CPU is not priced
    result = invoke(*args, "--gpu", "H100-SXM", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(io.StringIO(result.stdout))
    assert set(rows.gpu) == {"H100-SXM"} and rows.power_from.str.startswith("estimate: TDP 700 W").all()
    assert rows[(rows.tokens == "output") & (rows.scenario == "acme-od")].iloc[0].usd_per_mtok == pytest.approx(
        2.0 / 3.6
    )


def test_failed_serve_points_are_not_priced(tmp_path):
    records = [serve(0, 8, 2000.0, 6000.0, slo_met=True), serve(1, 512, 0.0, 0.0, slo_met=False, status="failed")]
    result = invoke(*write(tmp_path, records))
    assert result.exit_code == 0 and "not priced: 1 record: status failed, not ok" in result.stdout


def test_cost_prices_what_tokenbench_serve_wrote(tmp_path):
    """End to end: a concurrency sweep against the stub server, then `cost` on its records (the client ran
    on this CPU node, so --gpu names the server's GPU)."""
    from tests.serve.stub import StubServer

    out = tmp_path / "out"
    with StubServer(ttft_s=0.005, itl_s=0.001, output_len=4) as server:
        res = CliRunner().invoke(app, ["serve", "--base-url", server.base_url, "--num-prompts", "8",
                                       "--concurrency-sweep", "4", "--random-input-len", "8", "--random-output-len",
                                       "4", "--goodput", "ttft:5000", "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    (path,) = [p for p in out.glob("*.jsonl") if not p.name.endswith(".requests.jsonl")]
    result = invoke(str(path), "--gpu", "H100-SXM", "--format", "json")  # the records file: see the report
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    rows = pd.DataFrame(doc["rows"])
    assert set(rows.workload) == {"serve"} and set(rows.tokens) == {"output", "input", "total"}
    records = [json.loads(x) for x in path.read_text().splitlines()]
    for r in records:
        got = rows[(rows.seq == r["seq"]) & (rows.tokens == "output")].iloc[0].tokens_per_s
        assert got == pytest.approx(r["output_throughput"] / r["num_gpus"])
    cheapest = doc["gpus"]["H100-SXM"]["cheapest"]
    best = max((r for r in records if r["slo_met"]), key=lambda r: r["output_throughput"])
    assert cheapest["seq"] == best["seq"] and "meeting the SLO (TTFT <= 5000 ms)" in cheapest["why"]
