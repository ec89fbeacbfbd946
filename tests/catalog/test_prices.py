"""The cost catalog (bench/catalog/{offers,servers,site}.toml): coverage, sources, validation, overrides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.catalog import prices
from bench.catalog.gpus import CatalogError

COVERED = {"H100-SXM", "H200-SXM", "B200", "A100-SXM4-80GB", "L40S", "MI300X"}
DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def test_packaged_catalog_covers_the_required_gpus_with_offers():
    cat = prices.packaged()
    assert set(cat.gpus) >= COVERED
    assert {o.gpu for o in cat.offers.values()} >= COVERED
    h100 = cat.offers_for("H100-SXM")
    assert len(h100) >= 3
    assert {o.term for o in h100} >= {"on-demand", "1-year", "3-year"}
    assert [o.usd_per_gpu_hour for o in h100] == sorted(o.usd_per_gpu_hour for o in h100)


def test_every_figure_is_dated_and_sourced_and_weak_ones_say_why():
    cat = prices.packaged()
    items = [*cat.offers.values(), *cat.servers.values(), *cat.site.values()]
    for item in items:
        assert DATE.match(item.date) and item.source.strip(), item
        if item.weak:
            assert item.note and item.note.strip(), item
    assert set(cat.site) == set(prices.SITE_BOUNDS)


def test_server_capital_per_gpu_includes_the_network_share():
    server = prices.packaged().servers["hgx-h100-8"]
    # 296,644 / 8 / (1 - 0.19) = 45,778.4
    assert server.capital_per_gpu_usd == pytest.approx(296_644 / 8 / 0.81)
    assert server.capital_per_gpu_usd == pytest.approx(45_778.4, abs=0.1)


def write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


OFFER = """
[[offer]]
id = "{id}"
gpu = "{gpu}"
provider = "Acme"
product = "8x box"
term = "{term}"
usd_per_gpu_hour = {price}
{date}
source = "quote"
"""


def offer(id="acme", gpu="H100-SXM", term="on-demand", price=2.5, date='date = "2026-10"') -> str:
    return OFFER.format(id=id, gpu=gpu, term=term, price=price, date=date)


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        (offer(price=-1), r"offer\[0\] \(acme\): usd_per_gpu_hour: Input should be greater than 0"),
        (offer(date=""), r"offer\[0\] \(acme\): date: Field required$"),
        (offer(price="inf"), r"usd_per_gpu_hour: Input should be a finite number"),
        (offer(date='date = "2026-13"'), r"date: .*expected YYYY, YYYY-MM or YYYY-MM-DD"),
        (offer(gpu="H100"), r"offer\[0\] \(acme\): gpu: unknown GPU 'H100'; did you mean 'H100-SXM'"),
        (offer(gpu="Z9"), r"offer\[0\] \(acme\): gpu: unknown GPU 'Z9'; known: .*H100-SXM"),
        (offer(term="monthly"), r"term: Input should be 'on-demand', '1-year' or '3-year'"),
        (offer() + offer(), r"offer\[1\] \(acme\): id: duplicate id"),
        (offer() + "weak = true\n", r"a weak entry needs a note"),
        (offer() + "colour = 'red'\n", r"colour: Extra inputs are not permitted"),
        ("[site]\npue = 1.2\n", r"unknown top-level key\(s\) \['site'\].*\(site figures go in a --site file\)"),
        ("x = [", r"invalid TOML"),
    ],
)
def test_bad_catalog_files_are_one_line_errors_naming_the_field(tmp_path, text, expect):
    path = write(tmp_path, text)
    with pytest.raises(CatalogError) as e:
        prices.load([path])
    message = str(e.value)
    assert "\n" not in message and message.startswith(str(path))
    assert re.search(expect, message), message


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("pue = 0.9\n", r"site.pue: 0.9 is outside \[1.0, 3.0\]"),
        ("utilisation = 0\n", r"site.utilisation: 0.0 is outside \(0.0, 1.0\]"),
        ("usd_per_kwh = -0.1\n", r"site.usd_per_kwh: -0.1 is outside"),
        ("colour = 3\n", r"unknown site field\(s\) \['colour'\]"),
        ("[pue]\nvalue = 1.2\nsource = 'x'\n", r"site.pue: date: Field required"),
        ("[sensitivity]\npue = [1.6, 1.1]\n", r"sensitivity: .*pue: expected 0 < low <= high"),
        ("[sensitivity]\nutilisation = [0.5, 1.5]\n", r"utilisation: \[0.5, 1.5\] goes outside \[0.0, 1.0\]"),
        ("[sensitivity]\npue = [0.5, 0.9]\n", r"pue: \[0.5, 0.9\] goes outside \[1.0, 3.0\]"),
    ],
)
def test_bad_site_files_are_one_line_errors(tmp_path, text, expect):
    path = write(tmp_path, text, "site.toml")
    with pytest.raises(CatalogError) as e:
        prices.load(site_files=[path])
    assert "\n" not in str(e.value) and re.search(expect, str(e.value)), str(e.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CatalogError, match=r"nope.toml: cannot read"):
        prices.load([tmp_path / "nope.toml"])


def test_override_precedence(tmp_path):
    base = prices.packaged()
    first = write(tmp_path, offer(id="aws-p5-on-demand", price=5.0) + offer(id="acme", price=2.5), "a.toml")
    second = write(tmp_path, offer(id="acme", price=2.0), "b.toml")
    cat = prices.load([first, second])
    assert cat.offers["aws-p5-on-demand"].usd_per_gpu_hour == 5.0  # same id: replaced
    assert cat.offers["acme"].usd_per_gpu_hour == 2.0  # the later file wins
    assert set(base.offers) < set(cat.offers)  # the rest kept, the new id added
    assert cat.files == (str(first), str(second))
    assert base.offers["aws-p5-on-demand"].usd_per_gpu_hour == 6.88  # the packaged catalog is untouched

    site = write(tmp_path, "pue = 1.1\n[cost_of_capital]\nvalue = 0.05\ndate = '2026-11'\nsource = 'our treasury'\n"
                 "[sensitivity]\npue = [1.05, 1.2]\n", "site.toml")  # fmt: skip
    cat = prices.load([], [site])
    assert cat.value("pue") == 1.1 and cat.site["pue"].source == f"your site file {site}"
    assert cat.site["cost_of_capital"].source == "our treasury"
    assert cat.value("usd_per_kwh") == base.value("usd_per_kwh")  # fields not named are kept
    assert cat.sensitivity.pue == (1.05, 1.2)
    assert cat.sensitivity.capital == base.sensitivity.capital


def test_a_users_gpu_can_be_priced(tmp_path):
    gpu = """
[[gpu]]
id = "X1"
vendor = "Acme"
name = "Acme X1"
match = ["Acme X1"]
memory_bytes = 1_000_000_000
mem_bandwidth_gbps = 1000
tdp_w = 300
source = "datasheet"
source_url = "https://example.com/x1"
source_date = "2026-01"
[gpu.peak_tflops]
bf16 = 100
"""
    cat = prices.load([write(tmp_path, gpu + offer(gpu="X1"))])
    assert "X1" in cat.gpus and cat.offers_for("X1")[0].id == "acme"
