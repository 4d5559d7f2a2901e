"""The rewrite page in a real browser: headless Debian Chromium driven by Playwright.

Playwright cannot download its own browsers here, so it launches the system `chromium` (`.ci/run`
installs it). Missing on CI is a failure, not a skip. Screenshots go to tests/artifacts/ (ignored by
git); set AI2HUMAN_UPDATE_SCREENSHOT=1 to refresh the README's docs/app-screenshot.png as well
(it is also written when missing).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import REPO
from test_app import AI_TEXT, running_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = REPO / "tests" / "artifacts"
README_SCREENSHOT = REPO / "docs" / "app-screenshot.png"
WAIT_MS = 120_000  # longest wait for one page event (a rewrite on a 2-core CPU takes a few seconds)
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


def chromium_path() -> str:
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    message = "Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def app_url(demo_run, tmp_path_factory):
    with running_app(demo_run, tmp_path_factory.mktemp("app") / "app.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, app_url):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(app_url, wait_until="domcontentloaded")
    page.locator("#source textarea").wait_for()
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def rewrite(page, text: str) -> None:
    page.locator("#source textarea").fill(text)
    page.locator("#rewrite-button").click()


def test_rewrite_shows_the_output_and_its_scores(page):
    rewrite(page, AI_TEXT)
    table = page.locator("#scores table")
    table.get_by_text("meaning kept").wait_for()
    table.get_by_text("judged human").wait_for()
    assert "Score" in page.locator("#scores").inner_text()  # the verdict heads the table
    output = page.locator("#rewrite-output textarea").input_value()
    assert output.strip() and "Below is an instruction" not in output
    assert page.locator("#added").inner_text().strip()  # the rewrite, highlighted
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "app-rewrite.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("AI2HUMAN_UPDATE_SCREENSHOT") == "1" or not README_SCREENSHOT.exists():
        README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, README_SCREENSHOT)


def test_run_tab_shows_the_manifest_and_headline_metrics(page):
    page.get_by_role("tab", name="Run").click()
    summary = page.locator("#run-summary")
    summary.get_by_text("Evaluation on").wait_for()
    assert "success rate" in summary.inner_text() and "local:tiny-qwen2" in summary.inner_text()
    page.screenshot(path=str(ARTIFACTS / "app-run-tab.png"), full_page=True)


def test_empty_text_shows_a_message_and_nothing_breaks(page):
    rewrite(page, "")
    page.locator("#scores").get_by_text("Paste an AI-written text").wait_for()
    assert page.locator("#rewrite-output textarea").input_value() == ""
    rewrite(page, AI_TEXT)  # the page still works afterwards
    page.locator("#scores table").get_by_text("meaning kept").wait_for()


def test_over_long_text_shows_a_message_and_nothing_breaks(page):
    rewrite(page, " ".join(["word"] * 3000))
    page.locator("#scores").get_by_text("Too long for this run").wait_for()
    assert page.locator("#rewrite-output textarea").input_value() == ""
    page.screenshot(path=str(ARTIFACTS / "app-too-long.png"), full_page=True)
    rewrite(page, AI_TEXT)
    page.locator("#scores table").get_by_text("meaning kept").wait_for()
