"""report: tables per family with hand-checked figures, every output format, hostile strings escaped."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
from typer.testing import CliRunner

from bench.catalog import gpus, prices
from bench.cli import app
from bench.report.html import SORT_SCRIPT, cost_tables, render
from bench.report.model import build, frame
from bench.report.plots import all_plots
from bench.results.reader import read_runs
from bench.results.writer import RunWriter
from tests.support.handmade import CONFIGS, H100, IDLE_W, POWER_W, record, write_run

HOSTILE = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'


def invoke(*args: str):
    return CliRunner().invoke(app, ["report", *args])


@pytest.fixture
def node(tmp_path: Path) -> Path:
    for gpu in range(2):
        write_run(tmp_path / "node-a", "node-a", gpu=gpu, seed=gpu)
    return tmp_path


def table(rep, family):
    return next(t for t in rep.tables if t.family == family)


def row(t, workload, label, gpu=0):
    return next(r for r in t.rows if r["workload"] == workload and r["label"] == label and r["gpu_index"] == gpu)


def test_one_table_per_family_with_the_figures_that_matter(node):
    rep = build(read_runs(node), prices.packaged())
    assert [t.family for t in rep.tables] == ["gemm", "memory", "attention", "llm"]
    headers = {t.family: [c.header for c in t.columns] for t in rep.tables}
    assert headers["gemm"][:6] == ["node", "device", "run", "workload", "config", "status"]
    assert {"TFLOP/s", "% peak", "W", "J/TFLOP"} <= set(headers["gemm"])
    assert {"GB/s", "% peak"} <= set(headers["memory"])
    assert {"tokens/s", "TTFT", "TPOT", "tok/s/user", "J/token", "$/Mtok owned", "$/Mtok rented"} <= set(headers["llm"])
    assert "MFU" not in headers["llm"]  # no record has one: the column is left out, not shown empty
    assert len(table(rep, "llm").rows) == 2 * 3  # two GPUs, three LLM configurations


def test_fraction_of_peak_by_hand(node):
    rep = build(read_runs(node), prices.packaged())
    gemm = row(table(rep, "gemm"), "gemm", "8192x8192x8192 bf16")
    tflops = 2 * 8192**3 / 1.8e-3 / 1e12  # 610.8 TFLOP/s
    spec, _ = gpus.catalog_spec(H100)
    assert gemm["tflops"] == pytest.approx(tflops)
    assert gemm["frac_peak_flops"] == pytest.approx(tflops * 1e12 / gpus.peak_flops(spec, "bf16"))
    copy = row(table(rep, "memory"), "copy", "1024 MiB")
    assert copy["frac_peak_bw"] == pytest.approx(2 * 2**30 / 0.8e-3 / gpus.peak_bandwidth_bytes_per_s(spec))


def test_dollars_per_mtok_by_hand(node):
    cat = prices.packaged()
    rep = build(read_runs(node), cat)
    r = row(table(rep, "llm"), "decode", "llama-3.1-8b b32 pp512+tg128")
    tps = 32 * 128 / 1.6  # output tokens / median time of a batch
    assert r["rate_tokens_per_s"] == pytest.approx(tps)
    u = cat.value("utilisation")
    per_useful = {o.id: o.usd_per_gpu_hour / (u if o.committed else 1.0) for o in cat.offers_for("H100-SXM")}
    cheapest = min(per_useful, key=per_useful.__getitem__)
    assert r["usd_per_mtok_rented"] == pytest.approx(per_useful[cheapest] / (tps * 3600 / 1e6))
    offer = next(o for o in cat.offers_for("H100-SXM") if o.id == cheapest)
    assert r["rented_offer"] == f"{offer.name} ({offer.date})"
    from bench.cost.pricing import owned_for
    from bench.cost.subjects import Power

    owned = owned_for(cat, "H100-SXM", Power(POWER_W, 90.0, "measured", "measured"))
    assert r["usd_per_mtok_owned"] == pytest.approx(owned.usd_per_useful_hour(u) / (tps * 3600 / 1e6))


def test_columns_without_data_are_left_out_and_said_why(tmp_path):
    write_run(tmp_path, "laptop", device_name="Intel(R) Xeon(R) Processor", power_mean_w=None,
              energy_per_token_j=None, energy_per_tflop_j=None, energy_per_call_j=None, frac_peak_flops=None,
              frac_peak_bw=None, peak_tflops=None, peak_gb_per_s=None)  # fmt: skip
    rep = build(read_runs(tmp_path), prices.packaged())
    headers = {c.header for t in rep.tables for c in t.columns}
    assert not headers & {"W", "J/token", "% peak", "$/Mtok owned", "$/Mtok rented"}
    assert any("no device in these results has a vendor peak" in n for n in rep.notes)
    assert any(n.startswith("$/Mtok not shown for some LLM records: not a catalog GPU") for n in rep.notes)


def test_csv_holds_raw_values_and_defuses_formulas(tmp_path):
    write_run(tmp_path, '=HYPERLINK("http://x")')
    rep = build(read_runs(tmp_path), prices.packaged())
    rows = list(csv.DictReader(io.StringIO(frame(rep).to_csv(index=False))))
    assert len(rows) == 6 and {r["family"] for r in rows} == {"gemm", "memory", "attention", "llm"}
    assert all(r["hostname"].startswith("'=HYPERLINK") for r in rows)
    gemm = next(r for r in rows if r["workload"] == "gemm")
    assert float(gemm["tflops"]) == pytest.approx(2 * 8192**3 / 1.8e-3 / 1e12)  # a number, not "610.8"


def test_markdown_shows_hostile_text_as_text(tmp_path):
    write_run(tmp_path, "a|b", label="[x](javascript:alert(1)) <b>bold</b>")
    result = invoke(str(tmp_path), "--format", "md")
    assert result.exit_code == 0, result.output
    assert not re.search(r"(?<!\\)\]\(", result.output) and "<b>" not in result.output  # no link, no tag
    line = next(ln for ln in result.output.splitlines() if "javascript" in ln and ln.startswith("|"))
    assert r"a\|b" in line and r"\[x\]" in line and "&lt;b&gt;" in line
    unescaped_pipes = len(re.findall(r"(?<!\\)\|", line))
    header = next(ln for ln in result.output.splitlines() if ln.startswith("| node |"))
    assert unescaped_pipes == header.count("|")  # no cell broke out of its column


def test_terminal_shows_escape_codes_as_text(tmp_path):
    write_run(tmp_path, "evil\x1b[2J\x1b]0;owned\x07")
    result = invoke(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "evil\\x1b[2J" in result.output.replace("\n", "").replace("│", "").replace(" ", "")


def test_html_escapes_every_string_and_runs_only_its_own_script(tmp_path):
    write_run(tmp_path, HOSTILE, label="</td><script>alert(2)</script>")
    html = render(build(read_runs(tmp_path), prices.packaged()))
    assert "<script>document" not in html and "<img src=x" not in html and "<script>alert" not in html
    assert "&lt;script&gt;document.title=&#34;pwned&#34;&lt;/script&gt;" in html
    assert html.count("<script") == 1
    digest = base64.b64encode(hashlib.sha256(SORT_SCRIPT.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in html and "default-src 'none'" in html
    # self-contained: nothing is fetched from anywhere
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)


def test_every_plot_is_drawn_for_gpu_results_as_valid_svg(node):
    rep = build(read_runs(node), prices.packaged())
    plots = all_plots(rep.records, rep.cost)
    assert [p.key for p in plots] == ["interactivity", "serving", "roofline", "cost", "energy"]
    assert plots[1].svg is None and plots[1].reason == "no serve load point with tokens/s per user and per GPU"
    for p in plots[:1] + plots[2:]:
        assert p.svg is not None, p.reason
        assert ElementTree.fromstring(p.svg).tag.endswith("svg")


def test_a_plot_with_nothing_to_draw_says_why(tmp_path):
    write_run(tmp_path, "laptop", device_name="Intel(R) Xeon(R) Processor", energy_per_token_j=None)
    rep = build(read_runs(tmp_path), prices.packaged())
    plots = {p.key: p for p in all_plots(rep.records, rep.cost)}
    assert plots["cost"].svg is None and "no record could be priced" in plots["cost"].reason
    assert plots["energy"].svg is None and "no LLM record measured energy" in plots["energy"].reason
    assert "Not drawn: no LLM record measured energy" in render(rep)


def test_a_dollar_in_a_label_is_not_mathtext(tmp_path):
    write_run(tmp_path, "cost$1$node", label=r"$\frac{$")
    rep = build(read_runs(tmp_path), prices.packaged())
    assert all(p.svg for p in all_plots(rep.records, rep.cost) if p.key != "serving")


def test_cli_writes_the_html_page_and_prints_the_tables(node, tmp_path):
    page = tmp_path / "report.html"
    result = invoke(str(node), "--html", str(page))
    assert result.exit_code == 0, result.output
    assert "LLM workloads" in result.output and "GEMM" in result.output
    text = page.read_text()
    assert text.count("<table") == 1 + 4 + 1  # runs, four families, one GPU's cost table
    assert text.count('src="data:image/svg+xml;base64,') == 4


def test_cli_csv(node):
    result = invoke(str(node), "--format", "csv")
    assert result.exit_code == 0
    assert result.output.splitlines()[0].startswith("family,hostname,gpu,run_id,workload,label,status")


def test_cli_malformed_file_is_one_line_exit_2(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"schema_version": 1, "run_id": "r", "workload": "gemm", "status": "ok"}\n{\n')
    result = invoke(str(tmp_path))
    assert result.exit_code == 2
    assert result.output.strip() == f"tokenbench: error: {tmp_path / 'x.jsonl'}:2: not valid JSON (Expecting " \
                                    "property name enclosed in double quotes)"  # fmt: skip


def test_cli_empty_folder_is_an_error(tmp_path):
    result = invoke(str(tmp_path))
    assert result.exit_code == 2 and "no records found" in result.output


def test_recorded_cpu_runs_read_and_report():
    """Two real smoke runs from the CPU VM (the README's example): valid, and every table and plot builds."""
    runs = read_runs(Path(__file__).resolve().parents[1] / "data" / "cpu-smoke")
    assert [len(r.records) for r in runs] == [11, 11] and {r.state for r in runs} == {"complete"}
    rep = build(runs, prices.packaged())
    assert [t.family for t in rep.tables] == ["gemm", "memory", "attention", "llm"]
    plots = {p.key: p for p in all_plots(rep.records, rep.cost)}
    assert plots["interactivity"].svg and plots["roofline"].svg
    assert plots["cost"].svg is None and plots["energy"].svg is None


def test_notes_and_errors_show_control_characters_as_text(tmp_path):
    write_run(tmp_path, "node\x1b]0;x\x07", status="failed", reason="OOM\x1b[31m red", skip=("1024 MiB",))
    result = invoke(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "failed: node\\x1b]0;x\\x07" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"schema_version": 1, "run_id": "r", "workload": "w", "status": "ok",
                               "param_\x1b[2J": [1]}) + "\n")  # fmt: skip
    result = invoke(str(bad))
    assert result.exit_code == 2 and "\x1b" not in result.output and "'param_\\x1b[2J'" in result.output


def test_csv_defuses_a_formula_in_the_family_too(tmp_path):
    write_run(tmp_path, "node", family="=1+2")
    rows = list(csv.DictReader(io.StringIO(frame(build(read_runs(tmp_path), prices.packaged())).to_csv(index=False))))
    assert {r["family"] for r in rows} == {"'=1+2"}


def test_odd_but_valid_values_never_break_the_plots(tmp_path, monkeypatch):
    write_run(tmp_path / "a", "node", param_batch="32", bytes=0.0)  # a text batch, an impossible byte count
    write_run(tmp_path / "b", "node", gpu=1, param_batch=True, bytes=-1.0)
    rep = build(read_runs(tmp_path), prices.packaged())
    plots = {p.key: p for p in all_plots(rep.records, rep.cost)}
    assert plots["interactivity"].svg is None and plots["interactivity"].reason == "no decode records measured"
    assert plots["roofline"].svg is None  # no record has positive bytes
    import bench.report.plots as rp

    monkeypatch.setattr(rp, "energy_per_token", lambda records: 1 / 0)
    energy = {p.key: p for p in all_plots(rep.records, rep.cost)}["energy"]
    assert energy.svg is None and energy.reason == "could not be drawn: ZeroDivisionError: division by zero"


def test_a_run_named_twice_is_read_once_and_same_ids_are_priced_apart(tmp_path):
    write_run(tmp_path / "a", "node")
    assert len(read_runs(tmp_path, tmp_path / "a")) == 1
    write_run(tmp_path / "b", "node", slowdown=1.0)  # the same run_id and seq numbers, twice as slow
    rep = build(read_runs(tmp_path), prices.packaged())
    fast, slow = sorted((r for r in table(rep, "llm").rows if r["label"] == "llama-3.1-8b b1 pp512+tg128"),
                        key=lambda r: r["usd_per_mtok_owned"])  # fmt: skip
    assert fast["run_id"] == slow["run_id"] and fast["seq"] == slow["seq"]
    assert slow["usd_per_mtok_owned"] == pytest.approx(2 * fast["usd_per_mtok_owned"])
    assert slow["usd_per_mtok_rented"] == pytest.approx(2 * fast["usd_per_mtok_rented"])


def _own_prices(cat: prices.Catalog, tokens_per_s: float) -> tuple[float, float]:
    """(owned, cheapest rented) $/Mtok of an H100 record of the hand-made runs, from its own rate, by hand."""
    from bench.cost.pricing import owned_for
    from bench.cost.subjects import Power

    u = cat.value("utilisation")
    mtok_per_hour = tokens_per_s * 3600 / 1e6
    owned = owned_for(cat, "H100-SXM", Power(POWER_W, IDLE_W, "measured", "measured"))
    rented = min(o.usd_per_gpu_hour / (u if o.committed else 1.0) for o in cat.offers_for("H100-SXM"))
    return owned.usd_per_useful_hour(u) / mtok_per_hour, rented / mtok_per_hour


def test_two_runs_with_the_same_seq_numbers_price_each_record_as_its_own(tmp_path):
    write_run(tmp_path / "a", "node-a", seed=1)
    write_run(tmp_path / "b", "node-b", seed=2, slowdown=0.5)  # seq 0 to 5 again, half as slow again
    cat = prices.packaged()
    rows = table(build(read_runs(tmp_path), cat), "llm").rows
    assert len({r["run_id"] for r in rows}) == 2 and sorted(r["seq"] for r in rows) == [3, 3, 4, 4, 5, 5]
    for r in rows:
        owned, rented = _own_prices(cat, r["rate_tokens_per_s"])
        assert (r["usd_per_mtok_owned"], r["usd_per_mtok_rented"]) == (pytest.approx(owned), pytest.approx(rented))
    by_run = {(r["hostname"], r["seq"]): r["usd_per_mtok_owned"] for r in rows}
    assert all(by_run["node-b", seq] == pytest.approx(1.5 * by_run["node-a", seq]) for seq in (3, 4, 5))


def test_ranks_of_one_run_share_its_run_id_and_seq_but_are_priced_apart(tmp_path):
    run_id = "20261101T000000Z-job-0001"
    writer = RunWriter(tmp_path, run_id, {"suite": "node", "started_at": "2026-11-01T00:00:00Z"})
    decode = next(c for c in CONFIGS if c[0] == "decode")
    for rank, slowdown in ((0, 0.0), (1, 1.0)):  # one entry (seq 0) measured by both ranks; rank 1 twice as slow
        writer.append(record(run_id, 0, "node", rank, decode, slowdown, 0.01, 40, rank, rank=rank, world_size=2))
    writer.finish("complete", "2026-11-01T00:10:00Z")
    cat = prices.packaged()
    rep = build(read_runs(tmp_path), cat)
    rank0, rank1 = sorted(table(rep, "llm").rows, key=lambda r: r["rank"])
    assert (rank0["run_id"], rank0["seq"]) == (rank1["run_id"], rank1["seq"])
    for r in (rank0, rank1):
        owned, rented = _own_prices(cat, r["rate_tokens_per_s"])
        assert (r["usd_per_mtok_owned"], r["usd_per_mtok_rented"]) == (pytest.approx(owned), pytest.approx(rented))
    assert rank1["usd_per_mtok_owned"] == pytest.approx(2 * rank0["usd_per_mtok_owned"])
    [shown] = cost_tables(rep)  # the faster rank's record, owned and each offer once: not both ranks' rows
    assert len(shown.rows) == 1 + len(cat.offers_for("H100-SXM"))
    assert f"output tokens at {rank0['output_tokens_per_s']:.5g}/s" in shown.title


def test_long_strings_are_cut_in_cells(tmp_path):
    write_run(tmp_path, "n" * 5000)
    rep = build(read_runs(tmp_path), prices.packaged())
    cells = [c for row in table(rep, "gemm").grid().rows for c in row]
    assert max(map(len, cells)) == 200 and any(c.endswith("…") for c in cells)
    assert "n" * 201 not in render(rep)


def test_html_cost_table_sorts_by_number(node):
    html = render(build(read_runs(node), prices.packaged()))
    section = html[html.index('id="table-cost-0"') :]
    section = section[: section.index("</table>")]
    values = re.findall(r'<td data-v="([^"]*)" class="num[^"]*">[^<]*% use</td>', section)
    assert values and all(0 < float(v) <= 1 for v in values)  # the break-even share itself, not its text


def test_configurations_keep_the_suites_order_not_the_alphabets():
    from bench.report.model import family_tables

    def copy(seq: int, label: str) -> dict:
        return {"workload": "copy", "family": "memory", "label": label, "seq": seq, "status": "ok", "run_id": "r",
                "hostname": "n", "device": "cpu", "gb_per_s": 1.0}  # fmt: skip

    records = [copy(2, "2 GiB"), copy(0, "32 KiB"), copy(1, "128 MiB")]
    (table,) = family_tables(records, [{} for _ in records])
    assert [r["label"] for r in table.rows] == ["32 KiB", "128 MiB", "2 GiB"]


def test_csv_counts_are_integers_beside_empty_cells():
    import io

    import pandas as pd
    from typer.testing import CliRunner

    from bench.cli import app

    runs = Path(__file__).parents[1] / "data" / "cpu-smoke"
    result = CliRunner().invoke(app, ["report", str(runs), "--format", "csv"])
    assert result.exit_code == 0, result.output
    counts = pd.read_csv(io.StringIO(result.stdout), dtype=str)["n_samples"].dropna()
    assert len(counts) and all(c.isdigit() for c in counts), list(counts)  # 226, not 226.0
