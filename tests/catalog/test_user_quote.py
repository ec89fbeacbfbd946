"""The user's catalog wins: a [[server]] quote under a new id is used even when it costs more than the
packaged listing, and named in the output; a site with no energy cost; InferenceX's "3-year rental"
labelled so; did-you-mean for GPU ids."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.catalog import gpus, prices
from bench.catalog.gpus import CatalogError
from bench.cli import app


def server(sid: str, usd: int, gpu: str = "H100-SXM") -> str:
    return f"""
[[server]]
id = "{sid}"
gpu = "{gpu}"
product = "my vendor's quote"
gpus = 8
usd = {usd}
network_share = 0.2
provisioned_kw_per_gpu = 1.5
date = "2026-11"
source = "a quote"
"""


def write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def cost(*args: str):
    return CliRunner().invoke(app, ["cost", *args])


def test_a_dearer_quote_under_a_new_id_wins_over_the_packaged_listing(tmp_path):
    packaged = prices.load().server_for("H100-SXM")
    assert packaged is not None and packaged.id == "hgx-h100-8" and packaged.capital_per_gpu_usd < 50_000
    cat = prices.load([write(tmp_path, server("my-quote", 400_000))])
    chosen = cat.server_for("H100-SXM")
    assert chosen is not None and chosen.id == "my-quote"
    assert chosen.capital_per_gpu_usd == pytest.approx(62_500)  # 400,000 / 8 / (1 - 0.2), dearer than 45,778
    assert cat.server_file("my-quote") == str(tmp_path / "mine.toml") and cat.server_file("hgx-h100-8") is None
    assert cat.server_for("H200-SXM").id == "hgx-h200-8"  # other GPUs keep the packaged price


def test_among_the_users_quotes_the_cheapest_per_gpu_is_used(tmp_path):
    cat = prices.load([write(tmp_path, server("quote-a", 500_000) + server("quote-b", 420_000))])
    assert cat.server_for("H100-SXM").id == "quote-b"


def test_the_quote_is_used_and_named_in_the_output(tmp_path):
    path = write(tmp_path, server("my-quote", 400_000))
    args = ["--gpu", "H100-SXM", "--tokens-per-s", "1557", "--catalog", str(path)]
    doc = json.loads(cost(*args, "--format", "json").stdout)
    owned = doc["gpus"]["H100-SXM"]["owned"]
    assert owned["server"]["id"] == "my-quote" and owned["capital_usd"] == pytest.approx(62_500)
    text = cost(*args).stdout
    assert f"owned at your [[server]] 'my-quote' ({path}), which takes precedence" in text


def test_a_site_with_no_energy_cost(tmp_path):
    site = write(tmp_path, "usd_per_kwh = 0\n[sensitivity]\nusd_per_kwh = [0, 0.2]\n", "site.toml")
    cat = prices.load(site_files=[site])
    assert cat.value("usd_per_kwh") == 0 and cat.sensitivity.usd_per_kwh == (0.0, 0.2)
    result = cost("--gpu", "H100-SXM", "--tokens-per-s", "1557", "--site", str(site), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["gpus"]["H100-SXM"]["owned"]["energy_usd_per_wall_hour"] == 0


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("usd_per_kwh = -0.01\n", r"site.usd_per_kwh: -0.01 is outside \[0.0, 1.0\]"),
        ("[sensitivity]\nusd_per_kwh = [-0.1, 0.2]\n", r"usd_per_kwh: \[-0.1, 0.2\] goes outside \[0.0, 1.0\]"),
        ("[sensitivity]\nutilisation = [0, 0.9]\n", r"utilisation: expected 0 < low <= high"),  # 0 stays refused
    ],
)
def test_negative_energy_prices_are_still_refused(tmp_path, text, expect):
    with pytest.raises(CatalogError, match=expect):
        prices.load(site_files=[write(tmp_path, text, "site.toml")])


def test_the_inferencex_rental_price_is_labelled_so():
    cat = prices.load()
    rentals = [o for o in cat.offers.values() if o.id.startswith("inferencex-")]
    assert {o.gpu for o in rentals} == {"H100-SXM", "H200-SXM", "B200", "MI300X"}
    for o in rentals:
        assert o.provider == "InferenceX 3-year rental" and o.term == "3-year" and o.name == o.provider
        assert "neocloud" not in o.provider.lower() and "3-year rental" in (o.note or "")
    assert cat.offers["inferencex-h100-3-year-rental"].usd_per_gpu_hour == 1.30
    assert not [o for o in cat.offers.values() if "neocloud" in o.provider.lower() or "neocloud" in o.id]
    result = cost("--gpu", "H100-SXM", "--tokens-per-s", "1557", "--format", "csv")
    rows = pd.read_csv(io.StringIO(result.stdout))
    assert "InferenceX 3-year rental" in set(rows.provider)


@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("h100-sxm", "unknown GPU 'h100-sxm'; did you mean 'H100-SXM'?"),
        ("H100", "unknown GPU 'H100'; did you mean 'H100-SXM', 'H100-NVL' or 'H100-PCIe'?"),
        ("NVIDIA H100 80GB HBM3", "unknown GPU 'NVIDIA H100 80GB HBM3'; did you mean 'H100-SXM'?"),
        ("mi300", "unknown GPU 'mi300'; did you mean 'MI300X'?"),
        ("Z9", "unknown GPU 'Z9'; known: A100-PCIe-80GB, "),
    ],
)
def test_unknown_gpu_ids_suggest_the_closest(name, expect):
    assert gpus.unknown_gpu(name, gpus.load_catalog()).startswith(expect)


def test_gpu_flag_and_catalog_references_say_did_you_mean(tmp_path):
    result = cost("--gpu", "H100-SMX", "--tokens-per-s", "1")
    assert result.exit_code == 2
    assert result.output.startswith("tokenbench: error: --gpu: unknown GPU 'H100-SMX'; did you mean 'H100-SXM'")
    path = write(tmp_path, server("mine", 300_000, gpu="B-200"))
    result = cost("--gpu", "B200", "--tokens-per-s", "1", "--catalog", str(path))
    assert result.exit_code == 2 and "server[0] (mine): gpu: unknown GPU 'B-200'; did you mean 'B200'" in result.output
