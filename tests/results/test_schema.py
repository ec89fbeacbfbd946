"""The results schema: a record from another machine is data, checked field by field before use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.results.reader import ResultsError, load_records, read_runs
from bench.results.schema import FIELDS, check_header, check_record, parse_json
from tests.support.handmade import write_run

GOOD = {"schema_version": 1, "run_id": "r", "seq": 0, "workload": "gemm", "status": "ok", "tflops": 12.5,
        "n_samples": 3, "samples_s": [0.1, 0.2, 0.3], "label": "8x8x8 fp32", "unstable": False}  # fmt: skip

BAD = {
    "a number as text": ({"tflops": "12.5"}, "tflops: Input should be a valid number (got '12.5')"),
    "true as a number": ({"time_median_s": True}, "time_median_s: Input should be a valid number"),
    "a float count": ({"n_samples": 3.5}, "n_samples: Input should be a valid integer"),
    "a number as text field": ({"hostname": 42}, "hostname: Input should be a valid string"),
    "text inside samples": ({"samples_s": [0.1, "x"]}, "samples_s.1: Input should be a valid number"),
    "an object label": ({"label": {"$gt": 1}}, "label: Input should be a valid string"),
    "a nested parameter": ({"param_m": [1, 2]}, "'param_m': a parameter must be a string, number, true/false or null"),
    "a status of its own": ({"status": "great"}, "status 'great' is not one of ok, skipped, failed"),
    "no workload": ({"workload": None}, "workload: Input should be a valid string"),
    "an unknown field too deep": ({"x": [[[[1]]]]}, "'x': an unknown field must hold plain JSON values"),
    "a negative time": ({"ttft_p99_s": -0.1}, "ttft_p99_s: Input should be greater than or equal to 0"),
}


@pytest.mark.parametrize(("change", "message"), BAD.values(), ids=BAD.keys())
def test_wrong_types_are_named(change, message):
    assert check_record({**GOOD, **change}).startswith(message)


def test_an_echoed_input_is_cut_short():
    why = check_record({**GOOD, "hostname": ["x" * 100_000]})
    assert why.startswith("hostname: Input should be a valid string (got ['xxx") and len(why) < 120


def test_a_good_record_and_unknown_plain_fields_pass():
    assert check_record(GOOD) is None
    assert check_record({**GOOD, "a_newer_field": {"nested": [1, 2]}, "param_dtype": "bf16"}) is None


def test_every_documented_field_has_a_type():
    from bench.results.schema import Record

    typed = set(Record.model_fields)
    assert {k for k in FIELDS if k != "param_*"} <= typed


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_json_extensions_nan_and_infinity_are_refused(tmp_path, literal):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps(GOOD).replace("12.5", literal) + "\n")
    with pytest.raises(ResultsError, match=rf"r\.jsonl:2: not valid JSON \({literal} is not valid JSON\)"):
        load_records(path)
    with pytest.raises(ValueError):
        parse_json(literal)


def test_a_binary_file_is_refused(tmp_path):
    path = tmp_path / "model.jsonl"
    path.write_bytes(b"\x80\x04\x95pickle\x00")
    with pytest.raises(ResultsError, match=r"model\.jsonl: not UTF-8 text"):
        load_records(path)


def test_a_bad_header_is_named(tmp_path):
    path = write_run(tmp_path, "node")
    header = path.with_suffix(".json")
    data = json.loads(header.read_text())
    header.write_text(json.dumps({**data, "environment": "not an object"}))
    with pytest.raises(ResultsError, match=r"\.json: environment: Input should be a valid dictionary"):
        read_runs(tmp_path)
    assert check_header([]) == "a run header must be a JSON object"


def test_hand_made_runs_read_back_with_their_headers(tmp_path: Path):
    write_run(tmp_path, "node", gpu=0)
    write_run(tmp_path, "node", gpu=1)
    runs = read_runs(tmp_path)
    assert [r.state for r in runs] == ["complete", "complete"]
    assert [len(r.records) for r in runs] == [6, 6]
    assert runs[0].header["environment"]["driver_version"] == "570.86.15"
    assert all(isinstance(r["seq"], int) for run in runs for r in run.records)  # JSON types kept


def test_a_number_too_large_for_a_float_is_refused(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(GOOD).replace('"n_samples": 3', '"param_x": 1e999, "n_samples": 3') + "\n")
    with pytest.raises(ResultsError, match=r"r\.jsonl:1: not valid JSON \(1e999 is out of range for a number\)"):
        load_records(path)


def test_json_nested_too_deeply_is_one_error(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text("[" * 100_000 + "\n")
    with pytest.raises(ResultsError, match=r"r\.jsonl:1: not a record \(JSON nested too deeply\)"):
        load_records(path)


def test_a_header_that_is_a_folder_is_named(tmp_path):
    path = write_run(tmp_path, "node")
    path.with_suffix(".json").unlink()
    path.with_suffix(".json").mkdir()
    with pytest.raises(ResultsError, match=r"\.json: cannot read"):
        read_runs(path)


def test_surrogates_and_bidi_overrides_are_shown_as_escapes():
    from bench.text import plain

    assert plain("a\ud800b\u202ec") == "a\\ud800b\\u202ec"
