"""Debian's chromium, headless, driven by Playwright: log in, upload a real mammogram, read the result.

The browser is /usr/bin/chromium (scripts/test.sh installs Debian's package when it is missing);
Playwright never downloads one. The stack behind it is the compose services as local processes
(gunicorn + Celery worker on this machine's Redis and PostgreSQL). The result page is saved as a
screenshot under test-output/ for people to look at.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from breastapp.constants import RESEARCH_BANNER
from breastapp.ml.registry import read_card
from breastapp.ml.validation_summary import chance_caution
from tests.support.paths import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.services]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
MAMMOGRAM = "mdb028.png"  # mini-MIAS: circumscribed malignant mass
ANALYSIS_LINK = re.compile(r"/analyses/[0-9a-f-]{36}$")


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (scripts/test.sh installs Debian's chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture()
def page(browser, compose_stack):
    context = browser.new_context(base_url=compose_stack.base_url, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def test_radiologist_uploads_a_mammogram_and_reads_the_result(page, compose_stack, shared_data, output_dir):
    page.goto("/login")
    page.fill("#login", compose_stack.admin_username)
    page.fill("#password", compose_stack.admin_password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)

    page.goto("/studies/new")
    page.select_option("#modality", "MG")
    page.select_option("#laterality", "L")
    page.fill("#spacing_mm", "0.2")  # mini-MIAS films are 200 micron pixels: sizes come out in mm
    page.set_input_files("#files", str(shared_data / "mini-mias" / "images" / MAMMOGRAM))
    page.click("#submit")
    # Whether the page posts the form or sends it by script, a link to the analysis appears.
    analysis_link = page.locator("a[href*='/analyses/']").first
    analysis_link.wait_for(timeout=60_000)
    href = analysis_link.get_attribute("href")
    assert ANALYSIS_LINK.search(href), href

    page.goto(href)
    # The page polls the status endpoint and shows the result by itself once the worker is done.
    page.locator("#viewer-image").wait_for(state="visible", timeout=180_000)
    page.wait_for_function(
        "() => { const image = document.querySelector('#viewer-image');"
        " return image.complete && image.naturalWidth > 0; }"
    )
    assert RESEARCH_BANNER in page.content()
    # each network's validated figures beside its name, and the chance caution where its card calls for one
    assert page.locator(".weights .validation").count() == page.locator(".weights li").count() >= 2
    assert "Validated on mini-MIAS, 5-fold cross-validation by patient" in page.content()
    mg_cls = read_card(REPO_ROOT / "models", "mg_cls")
    assert page.locator(".alert-caution").count() == (1 if chance_caution(mg_cls) else 0)
    assert "pectoral muscle" in page.content(), "the notes say the muscle was left out of the search"
    assert page.locator("#verdict").inner_text().strip()
    assert page.locator("#lesion-table").count() == 1
    if page.locator("#lesion-table tbody tr").count():
        assert " mm" in page.locator("#lesion-table").inner_text()
    page.screenshot(path=str(output_dir / "result-page-mdb028.png"), full_page=True)

    # The display switcher swaps the overlay for the heatmap, which loads too.
    page.click("button[data-src$='heatmap.png']")
    page.wait_for_function(
        "() => { const image = document.querySelector('#viewer-image');"
        " return image.src.endsWith('heatmap.png') && image.complete && image.naturalWidth > 0; }"
    )
