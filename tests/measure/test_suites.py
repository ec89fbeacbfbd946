"""Suites: the built-in ones load, sweeps expand, and every kind of bad suite is one clear line."""

from __future__ import annotations

import time

import pytest

from bench.measure.suites import (
    MAX_ENTRIES,
    SuiteError,
    builtin_names,
    load_suite,
    parse_suite,
    parse_workload_arg,
    select,
)


def test_builtin_suites_load():
    assert {"smoke", "node"} <= set(builtin_names())
    smoke = load_suite("smoke")
    # 4 dtypes of the square GEMM + 1 LLM-shaped GEMM + copy + attention + train, prefill, 2 decode
    assert len(smoke.entries) == 11
    assert [e.workload.id for e in smoke.entries].count("gemm") == 5
    assert smoke.timer.min_reps == 5 and smoke.entries[0].timer == smoke.timer


def test_node_suite_shapes():
    node = load_suite("node")
    labels = [e.label for e in node.entries]
    assert "gemm 8192x8192x8192 bf16" in labels and "gemm 8192x8192x8192 fp8" in labels
    assert "gemm 8192x28672x4096 bf16" in labels  # Llama 3.1 8B fused gate+up
    assert sum(e.workload.id == "attention" for e in node.entries) == 4  # 2 lengths x 2 dtypes
    assert node.timer.cv_threshold == 0.05
    decode = [e for e in node.entries if e.workload.id == "decode"]
    assert [(e.params.batch, e.params.compile) for e in decode] == [
        (1, False), (8, False), (32, False), (128, False), (1, True), (32, True)
    ]  # fmt: skip
    assert {e.params.model for e in decode} == {"llama-3.1-8b"}
    train, ddp = [e for e in node.entries if e.workload.id == "train"]
    assert train.params.model == "llama-3.2-1b" and train.timer.min_time_s == 5.0
    assert (ddp.params.model, ddp.params.parallel) == ("llama-3.2-1b", "ddp")
    for op in ("all_reduce", "all_gather", "reduce_scatter"):  # every GPU at once, 32 KiB to 2 GiB
        sizes = [e.params.size_kib for e in node.entries if e.workload.id == op]
        assert sizes == [32, 512, 8192, 131072, 2097152], op


def test_collectives_suite_sweeps_32_kib_to_4_gib():
    suite = load_suite("collectives")
    for op in ("all_reduce", "all_gather", "reduce_scatter"):
        sizes = [e.params.size_kib for e in suite.entries if e.workload.id == op]
        assert sizes == [32 * 4**k for k in range(9)] + [4 * 2**20], op  # 32 KiB x4 to 2 GiB, then 4 GiB


SUITE = """
description = "t"
[timer]
min_reps = 3
[[bench]]
workload = "gemm"
params = { m = 8, n = 8, k = 8 }
sweep = { dtype = ["fp32", "bf16"], n = [8, 16] }
[[bench]]
workload = "copy"
params = { size_mib = 1 }
timer = { min_reps = 7 }
"""


def test_sweep_is_a_cartesian_product_in_order():
    suite = parse_suite(SUITE, "t", "t.toml")
    assert [e.label for e in suite.entries] == [
        "gemm 8x8x8 fp32",
        "gemm 8x16x8 fp32",
        "gemm 8x8x8 bf16",
        "gemm 8x16x8 bf16",
        "copy 1 MiB",
    ]
    assert suite.entries[0].timer.min_reps == 3 and suite.entries[-1].timer.min_reps == 7


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("[[bench]\nworkload=", "not valid TOML"),
        ('description = "x"', "bench: Field required"),
        ('[[bench]]\nworkload = "nope"', "bench[0] (nope): unknown workload 'nope'"),
        (
            '[[bench]]\nworkload = "gemm"\nparams = { m = -4 }',
            "bench[0] (gemm): gemm: m: Input should be greater than 0",
        ),
        ('[[bench]]\nworkload = "gemm"\nparams = { dtype = "int4" }', "gemm: dtype"),
        ('[[bench]]\nworkload = "gemm"\nsweep = { m = [1, -1] }', "gemm: m"),
        ('[[bench]]\nworkload = "gemm"\nsweep = { m = 4 }', "bench.0.sweep.m"),
        ('[[bench]]\nworkload = "gemm"\ncolour = "red"', "colour: Extra inputs are not permitted"),
        ('[timer]\nmin_reps = 0\n[[bench]]\nworkload = "copy"', "timer.min_reps"),
        ('[timer]\nwarmup = 1\n[[bench]]\nworkload = "copy"', "timer.warmup"),
        ('[[bench]]\nworkload = "copy"\ntimer = { min_reps = 9, max_reps = 2 }', "min_reps (9) exceeds max_reps (2)"),
    ],
)
def test_bad_suites_are_one_line_errors(text, expect):
    with pytest.raises(SuiteError) as e:
        parse_suite(text, "bad", "bad.toml")
    msg = str(e.value)
    assert msg.startswith("suite bad.toml: ") and expect in msg and "\n" not in msg


def test_unknown_suite_and_missing_file():
    with pytest.raises(SuiteError, match=r"unknown suite 'nosuch': known are .*node.*smoke"):
        load_suite("nosuch")
    with pytest.raises(SuiteError, match="does not exist"):
        load_suite("/nonexistent/suite.toml")


def test_suite_from_a_path(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text(SUITE)
    suite = load_suite(str(f))
    assert suite.name == "mine" and len(suite.entries) == 5


def test_parse_workload_arg():
    assert parse_workload_arg("gemm") == ("gemm", None)
    assert parse_workload_arg("gemm:m=64, n=32,dtype=bf16") == ("gemm", {"m": "64", "n": "32", "dtype": "bf16"})
    with pytest.raises(SuiteError, match="expected key=value, got 'm64'"):
        parse_workload_arg("gemm:m64")


def test_select_by_id_params_and_defaults():
    suite = parse_suite(SUITE, "t", "t.toml")
    assert [e.label for e in select(suite, ["copy"])] == ["copy 1 MiB"]
    (one,) = select(suite, ["gemm:m=64,n=32,k=16,dtype=bf16"])
    assert one.label == "gemm 64x32x16 bf16" and one.params.m == 64  # strings coerced to int
    (default,) = select(suite, ["attention"])  # not in the suite: its default parameters
    assert default.params == default.workload.Params()
    assert len(select(suite, [])) == 5
    with pytest.raises(SuiteError, match="--workload 'gemm:m=-1': gemm: m"):
        select(suite, ["gemm:m=-1"])
    with pytest.raises(SuiteError, match="unknown workload 'bogus'"):
        select(suite, ["bogus"])


# --- sweeps counted before they are expanded -------------------------------------------------------


def _sweep_suite(values_per_key: int, keys: int = 3, extra: str = "") -> str:
    names = ["m", "n", "k", "dtype"][:keys]
    sweep = ", ".join(f"{name} = [{', '.join(str(v + 1) for v in range(values_per_key))}]" for name in names)
    return f'{extra}[[bench]]\nworkload = "gemm"\nsweep = {{ {sweep} }}\n'


@pytest.mark.parametrize("per_key", [100, 1000])  # 10^6 and 10^9 entries
def test_a_huge_sweep_is_refused_before_it_is_expanded(per_key, monkeypatch):
    import workloads

    def never(*_a, **_k):
        raise AssertionError("a sweep over the limit must not be expanded")

    monkeypatch.setattr(workloads.get("gemm"), "parse", never)
    t0 = time.monotonic()
    with pytest.raises(SuiteError) as e:
        parse_suite(_sweep_suite(per_key), "big", "big.toml")
    assert time.monotonic() - t0 < 5
    assert str(e.value) == (f"suite big.toml: {per_key**3:,} entries, more than the limit of {MAX_ENTRIES:,}; "
                            f"give max_entries = N in the suite to allow more")  # fmt: skip


def test_the_entry_limit_counts_every_bench_and_can_be_raised():
    two = _sweep_suite(80, keys=2) + _sweep_suite(80, keys=2).replace("m = [", "m = [9999, ")  # 6,400 + 6,480
    with pytest.raises(SuiteError, match=f"12,880 entries, more than the limit of {MAX_ENTRIES:,}"):
        parse_suite(two, "two", "two.toml")
    assert len(parse_suite(_sweep_suite(100, keys=2), "at", "at.toml").entries) == MAX_ENTRIES == 10_000
    raised = parse_suite(_sweep_suite(101, keys=2, extra="max_entries = 10201\n"), "raised", "raised.toml")
    assert len(raised.entries) == 101 * 101
    with pytest.raises(SuiteError, match="max_entries: Input should be greater than or equal to 1"):
        parse_suite('max_entries = 0\n[[bench]]\nworkload = "copy"\n', "z", "z.toml")


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        ("params = { m = true }", "gemm: m: Input should be a number, not true or false"),
        ("sweep = { m = [8, true] }", "gemm: m: Input should be a number, not true or false"),
        ("params = { m = 8, dtype = 'fp32', n = 9223372036854775807, k = 8 }", None),
    ],
)
def test_suite_parameters_are_strict_numbers(line, expect):
    text = f'[[bench]]\nworkload = "gemm"\n{line}\n'
    if expect is None:
        assert parse_suite(text, "ok", "ok.toml").entries[0].params.n == 2**63 - 1
        return
    with pytest.raises(SuiteError, match=expect):
        parse_suite(text, "bad", "bad.toml")


def test_a_suite_size_of_inf_is_refused():
    with pytest.raises(SuiteError, match=r"copy: size_mib: Input should be a finite number"):
        parse_suite('[[bench]]\nworkload = "copy"\nparams = { size_mib = inf }\n', "bad", "bad.toml")
    with pytest.raises(SuiteError, match=r"--workload 'copy:size_mib=inf': copy: size_mib: Input should be a finite"):
        select(parse_suite(SUITE, "t", "t.toml"), ["copy:size_mib=inf"])


def test_a_folder_named_like_a_builtin_suite_does_not_hide_it(tmp_path, monkeypatch):
    """`tokenbench run --suite smoke --out smoke`: the results folder is not a suite file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "smoke").mkdir()
    assert load_suite("smoke").name == "smoke" and load_suite("smoke").entries
    (tmp_path / "mine").mkdir()
    with pytest.raises(SuiteError, match="suite file 'mine' does not exist"):
        load_suite("mine")
