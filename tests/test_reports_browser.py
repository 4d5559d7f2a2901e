"""The demo's three HTML reports in a real browser at 1,200 px: no table is cut off on the right.

The reports are what users read; a table wider than the page hides its last columns behind a
scrollbar (the tokens and style tables once lost `recommended_max_seq_length` and `readability`).
Headless Debian Chromium through Playwright, as in test_app_browser.py. Screenshots go to
tests/artifacts/reports/; with AI2HUMAN_UPDATE_SCREENSHOT=1 (or when missing) also to docs/reports/,
which the README shows.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from ai2human.runner.params import NOTEBOOKS, resolve_run
from conftest import REPO
from test_app_browser import browser  # noqa: F401  (browser: the shared fixture)

# The notebooks the demo runs: the pairs stage is skipped with pairs_source: dataset and the prefer
# stage runs only when listed (tests/test_pairs_notebook.py and tests/test_prefer_notebook.py run them).
DEMO_NOTEBOOKS = resolve_run(REPO / "params/demo.yaml").notebooks

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTH = 1200
ARTIFACTS = REPO / "tests" / "artifacts" / "reports"
DOCS = REPO / "docs" / "reports"

# Every table whose right edge lies beyond the page or beyond the box that clips it (an output area
# that scrolls sideways hides what is past its edge just the same).
OVERFLOWING_TABLES = """
() => {
  const page = document.documentElement.clientWidth;
  const found = [];
  for (const table of document.querySelectorAll("table")) {
    const box = table.getBoundingClientRect();
    if (box.width === 0) continue;
    let right = page;
    for (let el = table.parentElement; el && el !== document.body; el = el.parentElement) {
      const overflow = getComputedStyle(el).overflowX;
      if (overflow !== "visible") { right = Math.min(right, el.getBoundingClientRect().right); break; }
    }
    if (box.right > right + 1) {
      const caption = table.querySelector("caption");
      const head = (caption ? caption.innerText : table.innerText).slice(0, 80).replace(/\\s+/g, " ");
      found.push(`${Math.round(box.width)} px wide, ${Math.round(box.right - right)} px cut off: ${head}`);
    }
  }
  return found;
}
"""


def report_path(run, short: str):
    manifest = json.loads((run / "manifest.json").read_text())
    return run / manifest["notebooks"][short]["html"]


@pytest.mark.parametrize("short", DEMO_NOTEBOOKS)
def test_report_tables_fit_1200_px_and_a_screenshot_is_taken(browser, demo_run, short):
    context = browser.new_context(viewport={"width": WIDTH, "height": 900})
    try:
        page = context.new_page()
        page.goto(report_path(demo_run, short).as_uri(), wait_until="load")
        assert page.locator("h2").count() >= 3, "the report rendered its sections"
        overflowing = page.evaluate(OVERFLOWING_TABLES)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"{NOTEBOOKS[short].removesuffix('.ipynb')}.jpg"
        page.screenshot(path=str(shot), full_page=True, type="jpeg", quality=45)  # ~1 MB a report
    finally:
        context.close()
    assert shot.stat().st_size > 20_000
    assert not overflowing, f"{short}: tables wider than {WIDTH} px: {overflowing}"
    target = DOCS / shot.name
    if os.environ.get("AI2HUMAN_UPDATE_SCREENSHOT") == "1" or not target.exists():
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
