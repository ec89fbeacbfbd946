"""The HTML report end to end in headless Chromium: tables, plots, sorting, hostile input inert.

Uses Debian's `chromium` (the README's test command installs it) driven by Playwright. Without
a browser the test is skipped with the reason, except under CI=true, where it fails: CI must
run it. The screenshot is kept in tests/artifacts/report.png (or $TOKENBENCH_ARTIFACTS).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bench.catalog import prices
from bench.report.html import render
from bench.report.model import build
from bench.results.reader import read_runs
from tests.support.handmade import write_run

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TOKENBENCH_ARTIFACTS", ROOT / "tests" / "artifacts"))
HOSTILE = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'
# Chromium as root in a sandbox-less container, with no calls home on a closed network.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip


def chromium() -> str:
    path = os.environ.get("TOKENBENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path, why = None, "playwright is not installed (pip install -e '.[test]')"
    else:
        why = "no chromium on PATH (Debian: apt-get install chromium)"
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {why}")
        pytest.skip(why)
    return path


@pytest.fixture
def page_html(tmp_path: Path) -> Path:
    for gpu in range(2):
        write_run(tmp_path / "a", "node-a", gpu=gpu, seed=gpu)
    write_run(tmp_path / "b", HOSTILE, seed=9, slowdown=0.08)
    page = tmp_path / "report.html"
    page.write_text(render(build(read_runs(tmp_path / "a", tmp_path / "b"), prices.packaged())), encoding="utf-8")
    return page


def test_report_in_headless_chromium(page_html: Path):
    from playwright.sync_api import sync_playwright

    exe = chromium()
    events: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("console", lambda m: events.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: events.append(f"page error: {e}"))
            page.on("dialog", lambda d: (events.append(f"dialog: {d.message}"), d.dismiss()))
            page.on(
                "request",
                lambda r: events.append(f"request: {r.url}") if not r.url.startswith(("file:", "data:")) else None,
            )
            page.goto(page_html.as_uri())
            page.wait_for_load_state("load")

            # the tables: runs, four families, the H100's cost table; rows as many as records
            assert page.locator("table").count() == 6
            assert page.locator("#family-3 tbody tr").count() == 9  # three GPUs x three LLM configurations
            assert page.locator("#runs tbody tr").count() == 3

            # the plots: four images, each decoded by the browser
            images = page.locator("#plots img")
            assert images.count() == 4
            widths = images.evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
            assert all(w > 100 for w in widths), widths

            # hostile input renders as text and runs nothing
            assert page.title() == "tokenbench report"
            assert HOSTILE in page.locator("#runs").inner_text()

            # sorting: tokens/s ascending, then descending, by value not by text
            llm = page.locator("#family-3")
            col = [h.strip() for h in llm.locator("thead th").all_inner_texts()].index("tokens/s")
            values = f"rows => rows.map(r => Number(r.cells[{col}].dataset.v))"
            llm.locator("thead th button").nth(col).click()
            up = llm.locator("tbody tr").evaluate_all(values)
            assert up == sorted(up) and up[0] < up[-1]
            llm.locator("thead th button").nth(col).click()
            down = llm.locator("tbody tr").evaluate_all(values)
            assert down == sorted(up, reverse=True)
            assert llm.locator("thead th").nth(col).get_attribute("aria-sort") == "descending"

            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 50_000
        finally:
            browser.close()
    assert events == [], events  # no script error, no CSP violation, no dialog, nothing fetched
