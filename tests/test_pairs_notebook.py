"""The pairs notebook run as the runner runs it, with the tiny model as styler (issue 18): the real
generation path and filters, its gibberish dropped with the reason in the report, and a pairs file
that keeps the split by original row."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ai2human.data.pairs import load_pairs, split_pairs
from ai2human.pairs.filters import REASONS
from ai2human.rundir import PAIRS
from ai2human.runner.params import NOTEBOOK_DIR, NOTEBOOKS
from conftest import REPO
from test_demo_run import section_outputs

ROWS = 16


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    import papermill as pm

    run_dir = tmp_path_factory.mktemp("pairs-run")
    out = run_dir / NOTEBOOKS["pairs"]
    pm.execute_notebook(str(NOTEBOOK_DIR / NOTEBOOKS["pairs"]), str(out), kernel_name="python3", progress_bar=False,
                        parameters={"run_dir": str(run_dir), "dataset_path": str(REPO / "data" / "sample.csv"),
                                    "pairs_source": "reverse", "styler_model": "local:tiny-qwen2", "pairs_rows": ROWS,
                                    "styler_max_new_tokens": 48})
    return run_dir, json.loads(out.read_text())


def _text(nb) -> str:
    parts = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            parts.append("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/html", "")))
    return "\n".join(parts)


@pytest.mark.slow
def test_every_cell_ran_quietly_and_the_figure_was_drawn(executed):
    _, nb = executed
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["execution_count"] for c in code)
    assert not [o for c in code for o in c["outputs"] if o["output_type"] == "stream" and o["name"] == "stderr"]
    assert any("image/png" in o.get("data", {}) for c in code for o in c["outputs"])
    sections = section_outputs(nb["cells"])
    assert len(sections) >= 6 and all(sections.values()), f"a section shows nothing: {[k for k, v in sections.items() if not v]}"


@pytest.mark.slow
def test_the_tiny_stylers_gibberish_is_dropped_with_its_reason_shown(executed):
    _, nb = executed
    text = _text(nb)
    assert "no chat template in its tokenizer, so the Alpaca prompt" in text
    assert f"{ROWS} texts restyled at" in text, "the real generation path ran"
    assert f"0 of {ROWS} restyled texts pass every filter" in text
    assert f"dropped: {REASONS['not_fluent']}" in text and "drops by first failing check: " + REASONS["not_fluent"] in text


@pytest.mark.slow
def test_the_pairs_file_keeps_every_training_row_and_no_validation_text(executed):
    run_dir, _ = executed
    pairs = pd.read_parquet(run_dir / PAIRS)
    train, val = split_pairs(load_pairs(REPO / "data" / "sample.csv", "human", "LLM")[0], 0.2, 42)
    assert list(pairs.columns) == ["human", "ai", "row", "source"]
    assert set(pairs["row"]) == set(train["row"]) and not set(pairs["human"]) & set(val["human"])
    assert set(pairs["source"]) == {"dataset"}, "nothing the tiny model wrote passed, so every row keeps its dataset pair"


@pytest.mark.slow
@pytest.mark.browser
def test_the_report_tables_fit_1200_px(executed):
    """As test_reports_browser.py checks the demo's reports (the demo does not run this stage)."""
    from playwright.sync_api import sync_playwright

    from ai2human.runner.execute import render_html
    from test_app_browser import CHROMIUM_ARGS, chromium_path
    from test_reports_browser import OVERFLOWING_TABLES, WIDTH

    run_dir, _ = executed
    html = render_html(run_dir / NOTEBOOKS["pairs"])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 900})
            page.goto(html.as_uri(), wait_until="load")
            assert page.locator("h2").count() >= 6
            overflowing = page.evaluate(OVERFLOWING_TABLES)
        finally:
            browser.close()
    assert not overflowing, f"tables wider than {WIDTH} px: {overflowing}"
