"""`tokenbench cost` answers first: one headline per GPU model ("cheapest: <offer> $a/Mtok; owned $b/Mtok
(x× rented)"), the "nothing to price" error with counts per reason, and a training projection that
needs no --tokens-per-s."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.cost.headline import mtok
from tests.cost.test_cost_cli import rec


def cost(*args: str):
    return CliRunner().invoke(app, ["cost", *args])


def test_the_headline_opens_the_output_with_the_cheapest_offer_and_owned():
    result = cost("--gpu", "H100-SXM", "--tokens-per-s", "1557")
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    # the cheapest per useful hour is InferenceX's 3-year rental: $1.30 / 0.8 utilisation = $1.625, over
    # 1557 x 3600 / 1e6 = 5.6052 Mtok an hour = $0.2899; owned $3.6776 / 5.6052 = $0.6561, 2.26x
    assert (
        first == "H100-SXM, given rate: cheapest: InferenceX 3-year rental* $0.29/Mtok; owned $0.66/Mtok (2.26× rented)"
    )
    doc = json.loads(cost("--gpu", "H100-SXM", "--tokens-per-s", "1557", "--format", "json").stdout)
    cheapest = doc["gpus"]["H100-SXM"]["cheapest"]
    assert cheapest["usd_per_mtok"] == pytest.approx(1.625 / 5.6052, rel=1e-4)
    assert cheapest["owned_over_rented"] == pytest.approx(3.6776 / 1.625, rel=1e-4)


def test_headline_names_the_record_and_how_it_was_chosen(tmp_path):
    records = [rec(0, workload="decode", label="decode b8", output_tokens_per_s=500.0),
               rec(1, workload="decode", label="decode b64", output_tokens_per_s=3000.0),
               rec(2, workload="train", label="train", tokens_per_s=9000.0)]  # fmt: skip
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    first = cost(str(path)).stdout.splitlines()[0]
    assert first.startswith("H100-SXM, #1 decode b64 (the highest output tokens/s of 2 decode records), output tokens:")


@pytest.mark.parametrize(("value", "text"), [(0.2899, "$0.29"), (12.345, "$12.35"), (0.0412, "$0.0412"), (None, "-")])
def test_mtok_figures(value, text):
    assert mtok(value) == text


def test_nothing_to_price_counts_records_per_reason(tmp_path):
    records = [rec(0, workload="train", tokens_per_s=None), rec(1, workload="decode"),
               rec(2, workload="train", tokens_per_s=100.0, device_name="NVIDIA L4")]  # fmt: skip
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = cost(str(path))
    assert result.exit_code == 2
    assert result.output == (
        "tokenbench: error: nothing to price: 3 records skipped: 2 without tokens/s, 1 on a GPU with no catalog "
        "price (L4)\n"
    )


def test_a_training_projection_needs_no_tokens_per_s():
    args = ["--gpu", "H100-SXM", "--train-params", "8e9", "--train-tokens", "15e12", "--train-gpus", "1024",
            "--mfu", "0.4"]  # fmt: skip
    result = cost(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    p = doc["gpus"]["H100-SXM"]["projection"]
    assert p["gpu_hours"] == pytest.approx(6 * 8e9 * 15e12 / (0.4 * 989e12) / 3600)  # 505,561 GPU-hours
    assert p["days"] == pytest.approx(p["gpu_hours"] / 1024 / 24)  # 20.57 days
    rows = pd.DataFrame(doc["rows"])
    assert set(rows.tokens) == {"trained"}
    assert rows.tokens_per_s.iloc[0] == pytest.approx(0.4 * 989e12 / (6 * 8e9))  # 8,241.7 tokens/s per GPU
    assert "Training run on H100-SXM" in cost(*args).stdout


def test_a_training_projection_with_nothing_measured_and_no_mfu_is_one_line():
    result = cost("--gpu", "H100-SXM", "--train-params", "8e9", "--train-tokens", "15e12", "--train-gpus", "8")
    assert result.exit_code == 2
    assert result.output == (
        "tokenbench: error: training projection for H100-SXM: no measured MFU: give results with a training "
        "record (tokenbench run -w train:...), or --mfu\n"
    )


def test_a_training_projection_from_measured_records(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(rec(0, workload="train", label="train 1b", tokens_per_s=9000.0, mfu=0.45,
                                   compute_dtype="bf16")) + "\n")  # fmt: skip
    result = cost(str(path), "--train-params", "8e9", "--train-tokens", "15e12", "--train-gpus", "1024", "--format",
                  "csv")  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(io.StringIO(result.stdout))
    assert set(rows.tokens) == {"trained"} and set(rows.tokens_per_s) == {9000.0}
