"""Tests of the GPU catalog (bench/catalog/gpus.toml) and its lookup (bench/catalog/gpus.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pydantic
import pytest

from bench.catalog.gpus import (
    PEAK_DTYPES,
    CatalogError,
    GpuSpec,
    load_catalog,
    lookup,
    peak_bandwidth_bytes_per_s,
    peak_flops,
)

REQUIRED_IDS = {
    "H100-SXM", "H100-PCIe", "H100-NVL", "H200-SXM", "H200-NVL", "B200",
    "A100-SXM4-80GB", "A100-PCIe-80GB", "A100-SXM4-40GB", "L40S", "L4", "MI300X",
}  # fmt: skip


def _by_id(spec_id: str) -> GpuSpec:
    return next(s for s in load_catalog() if s.id == spec_id)


# --- the packaged catalog ------------------------------------------------------------------


def test_packaged_catalog_loads_with_all_required_ids() -> None:
    ids = [s.id for s in load_catalog()]
    assert set(ids) >= REQUIRED_IDS, REQUIRED_IDS - set(ids)
    assert len(ids) == len(set(ids))


def test_packaged_catalog_is_cached_but_callers_get_their_own_list() -> None:
    a, b = load_catalog(), load_catalog()
    assert a == b and a is not b
    assert all(x is y for x, y in zip(a, b, strict=True))  # parsed once


def test_every_entry_cites_a_source_url_and_date() -> None:
    for s in load_catalog():
        assert s.source.strip(), s.id
        assert s.source_url.startswith("https://"), s.id
        assert re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", s.source_date), s.id
        if s.weak:  # a weak entry must say what is weak about it
            assert s.note and s.note.strip(), s.id


# Hand values from /work/shared/REFERENCE.md (dense bf16 / fp8 TFLOP/s, bandwidth GB/s).
REFERENCE = [
    ("H100-SXM", 989, 1979, 3350),
    ("H100-PCIe", 756, 1513, 2000),
    ("H100-NVL", 835, 1671, 3900),
    ("H200-SXM", 989, 1979, 4800),
    ("B200", 2250, 4500, 8000),
    ("A100-SXM4-80GB", 312, None, 2039),
    ("L40S", 362, 733, 864),
    ("MI300X", 1307, 2615, 5300),
]


@pytest.mark.parametrize(("spec_id", "bf16", "fp8", "bw_gbps"), REFERENCE)
def test_figures_agree_with_reference_table(spec_id: str, bf16: float, fp8: float | None, bw_gbps: float) -> None:
    s = _by_id(spec_id)
    assert peak_flops(s, "bf16") == pytest.approx(bf16 * 1e12, rel=0.01)
    if fp8 is None:
        assert peak_flops(s, "fp8") is None
    else:
        assert peak_flops(s, "fp8") == pytest.approx(fp8 * 1e12, rel=0.01)
    assert peak_bandwidth_bytes_per_s(s) == pytest.approx(bw_gbps * 1e9, rel=0.01)


def test_tensor_peaks_are_consistently_dense() -> None:
    # Every datasheet here has fp8 = 2 x bf16 and tf32 = bf16 / 2 (dense to dense). A with-sparsity
    # figure copied into one key breaks these ratios by 2x.
    for s in load_catalog():
        p = s.peak_tflops
        assert p["fp16"] == pytest.approx(p["bf16"], rel=0.01), s.id
        assert p["tf32"] == pytest.approx(p["bf16"] / 2, rel=0.03), s.id
        if "fp8" in p:
            assert p["fp8"] == pytest.approx(2 * p["bf16"], rel=0.03), s.id
        assert p["fp32"] < p["bf16"], s.id


def test_no_fp8_on_ampere() -> None:
    for spec_id in ("A100-SXM4-80GB", "A100-PCIe-80GB", "A100-SXM4-40GB"):
        assert "fp8" not in _by_id(spec_id).peak_tflops


# --- lookup ----------------------------------------------------------------------------------

DEVICE_NAMES = [
    ("NVIDIA H100 80GB HBM3", "H100-SXM"),
    ("NVIDIA H100 PCIe", "H100-PCIe"),
    ("NVIDIA H100 NVL", "H100-NVL"),
    ("NVIDIA H200", "H200-SXM"),
    ("NVIDIA H200 NVL", "H200-NVL"),
    ("NVIDIA B200", "B200"),
    ("NVIDIA A100-SXM4-80GB", "A100-SXM4-80GB"),
    ("NVIDIA A100 80GB PCIe", "A100-PCIe-80GB"),
    ("NVIDIA A100-SXM4-40GB", "A100-SXM4-40GB"),
    ("NVIDIA L40S", "L40S"),
    ("NVIDIA L4", "L4"),
    ("AMD Instinct MI300X", "MI300X"),
    # case-insensitive, and a suffix after a separator still matches
    ("nvidia h200 nvl", "H200-NVL"),
    ("AMD Instinct MI300X VF", "MI300X"),
]


@pytest.mark.parametrize(("device_name", "expected_id"), DEVICE_NAMES)
def test_lookup_resolves_torch_device_names(device_name: str, expected_id: str) -> None:
    spec = lookup(device_name)
    assert spec is not None, device_name
    assert spec.id == expected_id


@pytest.mark.parametrize(
    ("longer", "shorter"),
    [
        ("NVIDIA H200 NVL", "NVIDIA H200"),
        ("NVIDIA L40S", "NVIDIA L4"),
        ("NVIDIA A100 80GB PCIe", "NVIDIA A100-SXM4-80GB"),
    ],
)
def test_near_names_resolve_to_different_entries(longer: str, shorter: str) -> None:
    a, b = lookup(longer), lookup(shorter)
    assert a is not None and b is not None
    assert a.id != b.id


@pytest.mark.parametrize(
    "device_name",
    [
        "cpu",
        "",
        "Intel(R) Xeon(R) Platinum 8480C",
        "NVIDIA GeForce RTX 4090",
        "NVIDIA L40",  # "NVIDIA L4" is a prefix of it, but it is a different GPU
        "NVIDIA GH200 480GB",  # contains "H200" but is not an H200
        "NVIDIA H100",  # variant unknown: better no peak than the wrong one
    ],
)
def test_lookup_returns_none_for_unknown_devices(device_name: str) -> None:
    assert lookup(device_name) is None


def test_lookup_prefers_the_longest_match_whatever_the_file_order() -> None:
    catalog = load_catalog()
    for order in (catalog, list(reversed(catalog))):
        hit = lookup("NVIDIA H200 NVL", order)
        assert hit is not None and hit.id == "H200-NVL"


# --- peak helpers ----------------------------------------------------------------------------


def test_peak_flops_h100_sxm_bf16_matches_hand_value() -> None:
    spec = lookup("NVIDIA H100 80GB HBM3")
    assert peak_flops(spec, "bf16") == pytest.approx(989e12, rel=0.01)


def test_peak_flops_none_for_missing_dtype_or_spec() -> None:
    assert peak_flops(lookup("NVIDIA A100-SXM4-80GB"), "fp8") is None
    assert peak_flops(None, "bf16") is None
    assert peak_bandwidth_bytes_per_s(None) is None


def test_peak_flops_rejects_unknown_dtype_names() -> None:
    with pytest.raises(ValueError, match="bfloat16"):
        peak_flops(lookup("NVIDIA H100 80GB HBM3"), "bfloat16")
    assert set(PEAK_DTYPES) == {"fp32", "tf32", "fp16", "bf16", "fp8"}


def test_bandwidth_in_bytes_per_second() -> None:
    assert peak_bandwidth_bytes_per_s(lookup("NVIDIA H200")) == pytest.approx(4.8e12)


# --- invalid catalogs ------------------------------------------------------------------------

_VALID = {
    "id": '"TEST-GPU"',
    "vendor": '"NVIDIA"',
    "name": '"Test GPU"',
    "match": '["Test GPU"]',
    "memory_bytes": "85_899_345_920",
    "mem_bandwidth_gbps": "3350",
    "tdp_w": "700",
    "source": '"Test datasheet"',
    "source_url": '"https://example.com/datasheet.pdf"',
    "source_date": '"2024-01"',
}
_PEAKS = {"fp32": "67", "bf16": "989"}


def _entry(drop: tuple[str, ...] = (), peaks: dict[str, str] | None = None, **fields: str) -> str:
    body = {**_VALID, **fields}
    lines = ["[[gpu]]"] + [f"{k} = {v}" for k, v in body.items() if k not in drop]
    lines += ["[gpu.peak_tflops]"] + [f"{k} = {v}" for k, v in (peaks or _PEAKS).items()]
    return "\n".join(lines) + "\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gpus.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_valid_catalog_loads(tmp_path: Path) -> None:
    path = _write(tmp_path, _entry() + _entry(id='"OTHER"', match='["Other GPU"]'))
    specs = load_catalog(path)
    assert [s.id for s in specs] == ["TEST-GPU", "OTHER"]
    assert lookup("Test GPU", specs) is specs[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            _entry(peaks={"fp32": "67", "bf16": "-989"}),
            ["gpu[0] (TEST-GPU)", "peak_tflops.bf16", "greater than 0"],
            id="negative-peak",
        ),
        pytest.param(
            _entry(drop=("source_date",)),
            ["gpu[0] (TEST-GPU)", "source_date", "Field required"],
            id="missing-source-date",
        ),
        pytest.param(
            _entry(source_date='"Jan 2024"'),
            ["gpu[0] (TEST-GPU)", "source_date", "YYYY-MM"],
            id="bad-source-date",
        ),
        pytest.param(
            _entry(peaks={"fp32": "67", "fp4": "9000"}),
            ["gpu[0] (TEST-GPU)", "peak_tflops.fp4"],
            id="unknown-dtype-key",
        ),
        pytest.param(
            _entry() + _entry(match='["Another GPU"]'),
            ["gpu[1] (TEST-GPU)", "id", "duplicate"],
            id="duplicate-id",
        ),
        pytest.param(
            _entry() + _entry(id='"OTHER"'),
            ["gpu[1] (OTHER)", "match", "Test GPU"],
            id="duplicate-match",
        ),
        pytest.param(
            _entry(mem_bandwidth_gbps="0"),
            ["gpu[0] (TEST-GPU)", "mem_bandwidth_gbps"],
            id="zero-bandwidth",
        ),
        pytest.param(
            _entry(surprise='"x"'),
            ["gpu[0] (TEST-GPU)", "surprise", "Extra inputs"],
            id="unknown-field",
        ),
        pytest.param(
            _entry(drop=("id",)),
            ["gpu[0]", "id", "Field required"],
            id="missing-id",
        ),
        pytest.param(
            '[[gpu]]\nid = "X"\nvendor = \n',
            ["invalid TOML"],
            id="malformed-toml",
        ),
        pytest.param("", ["[[gpu]]"], id="empty-file"),
    ],
)
def test_invalid_catalog_raises_one_line_error(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: ")
    for part in expected:
        assert part in msg, (part, msg)


def test_catalog_error_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        load_catalog(tmp_path / "missing.toml")


def test_unquoted_toml_date_is_accepted(tmp_path: Path) -> None:
    # TOML parses an unquoted 2024-01-15 as a date; it is stored as the same string.
    spec = load_catalog(_write(tmp_path, _entry(source_date="2024-01-15")))[0]
    assert spec.source_date == "2024-01-15"


def test_specs_are_immutable() -> None:
    spec = load_catalog()[0]
    with pytest.raises(pydantic.ValidationError, match=r"for GpuSpec\nid\n  Instance is frozen"):
        spec.id = "changed"  # type: ignore[misc]
    assert spec.id != "changed"


def test_a_match_must_not_start_inside_a_longer_word():
    spec = lookup("NVIDIA H200").model_copy(update={"match": ("H200",)})
    assert lookup("NVIDIA H200", [spec]) is spec
    assert lookup("NVIDIA GH200 480GB", [spec]) is None  # "GH200" is a different chip
