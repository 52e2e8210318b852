"""The page in headless Chromium (Debian's package, driven by Playwright): type a prompt in the
Simple tab, press Generate, see the picture; then find it in the Gallery with its recipe."""
import contextlib
import os
import pathlib
import shutil

import pytest

from tests.conftest import need

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = pathlib.Path(__file__).resolve().parent / "_artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]


@contextlib.contextmanager
def app_page(url: str):
    """Headless Chromium showing the app at `url`, once its first tab is up (skips, or fails where the
    services are required, without Debian's chromium)."""
    if not os.path.exists(CHROMIUM):
        need("Debian's chromium is not installed (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 950})
        page.goto(url)
        page.wait_for_selector("#simple-prompt textarea", timeout=30000)
        yield page
        browser.close()


@pytest.fixture(scope="module")
def page(atelier):
    with app_page(atelier.url) as page:
        yield page


def test_simple_tab_generates_a_picture(page):
    SHOTS.mkdir(exist_ok=True)
    assert "demo model" in page.inner_text("#demo-banner")
    page.fill("#simple-prompt textarea", "a lighthouse at dusk")
    page.click("#simple-generate")
    page.wait_for_selector("#simple-gallery img", timeout=60000)
    page.wait_for_selector("#simple-summary :text('Seeds:')", timeout=10000)
    page.screenshot(path=str(SHOTS / "simple_tab.png"), full_page=True)
    image = page.locator("#simple-gallery img").first
    assert image.evaluate("img => img.complete && img.naturalWidth") == 64
    assert "demo-sd15 · 64×64" in page.inner_text("#simple-summary")


def test_gallery_shows_the_recipe_and_reuses_its_settings(page):
    page.get_by_role("tab", name="Gallery").click()
    page.wait_for_selector("#gallery-grid img", timeout=30000)
    page.locator("#gallery-grid img").first.click()
    page.wait_for_selector("#gallery-heading :text('seed')", timeout=10000)
    assert "Prompt: a lighthouse at dusk" in page.inner_text("#gallery-heading")
    assert '"plan_hash"' in page.inner_text("#gallery-recipe")
    page.screenshot(path=str(SHOTS / "gallery_tab.png"), full_page=True)
    page.click("#gallery-reuse")
    page.wait_for_selector("#adv-prompt textarea", timeout=10000)
    page.wait_for_function("document.querySelector('#adv-prompt textarea').value.includes('lighthouse')",
                           timeout=10000)
    assert page.input_value("#adv-prompt textarea") == "a lighthouse at dusk"
    page.screenshot(path=str(SHOTS / "advanced_tab.png"), full_page=True)


def test_progress_shows_the_step_count_and_cancel_stops_the_job(page, atelier, owner):
    page.get_by_role("tab", name="Advanced").click()
    page.wait_for_selector("#adv-steps input[type=number]", timeout=10000)
    page.fill("#adv-prompt textarea", "a slow one")
    for name, value in (("adv-steps", "150"), ("adv-width", "256"), ("adv-height", "256")):
        box = page.locator(f"#{name} input[type=number]")
        box.fill(value)
        box.press("Enter")
    page.click("#adv-generate")
    shown = page.wait_for_selector("text=/step \\d+ of 150/", timeout=30000).inner_text()
    page.screenshot(path=str(SHOTS / "progress.png"), full_page=True)
    assert int(shown.split()[1]) < 150
    page.click("#adv-cancel")
    page.wait_for_selector("text=The job was cancelled.", timeout=30000)
    page.screenshot(path=str(SHOTS / "cancelled.png"), full_page=True)
    newest = atelier.service.recent(owner)[0]
    assert newest["status"] == "cancelled" and newest["progress"]["step"] < 150


def test_paint_a_mask_and_inpaint_it(page, atelier, owner):
    """Send an image from the Gallery to the Inpaint tab, paint a stroke with the mouse, inpaint."""
    import numpy as np
    from PIL import Image
    page.get_by_role("tab", name="Gallery").click()
    page.wait_for_selector("#gallery-grid img", timeout=30000)
    page.locator("#gallery-grid img").first.click()
    page.wait_for_selector("#gallery-heading :text('seed')", timeout=10000)
    page.click("#gallery-send-inpaint")
    page.wait_for_selector("#inpaint-editor canvas", timeout=10000)
    page.wait_for_timeout(1000)
    page.locator("#inpaint-editor button[aria-label='Brush']").click()
    box = page.locator("#inpaint-editor canvas").first.bounding_box()
    x, y = box["x"] + box["width"] * 0.47, box["y"] + box["height"] * 0.5     # the picture sits in the middle
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + box["width"] * 0.06, y, steps=10)
    page.mouse.up()
    page.fill("#inpaint-prompt textarea", "a red ball")
    page.click("#inpaint-generate")
    page.wait_for_selector("#inpaint-summary :text('Seeds:')", timeout=60000)
    page.screenshot(path=str(SHOTS / "inpaint_tab.png"), full_page=True)

    service, artifacts = atelier.service, atelier.artifacts
    job = service.job(owner, service.recent(owner)[0]["job_id"])
    assert job.status == "succeeded"
    parents = {p["relation"]: p["artifact_id"] for p in artifacts.artifact_info(owner, job.artifact_ids[0])["parents"]}
    mask = np.asarray(Image.open(artifacts.artifact_path(artifacts.artifact(owner, parents["mask"]))).convert("L"))
    painted = mask > 127
    assert 0.05 < painted.mean() < 0.9                         # a stroke, not nothing and not everything
    assert not painted[:, 0].any() and not painted[0, :].any()  # it starts inside the picture
    result = np.asarray(Image.open(artifacts.artifact_path(artifacts.artifact(owner, job.artifact_ids[0]))).convert("RGB"))
    source = np.asarray(Image.open(artifacts.artifact_path(artifacts.artifact(owner, parents["source"]))).convert("RGB"))
    untouched = mask == 0                                      # the feather only reaches inward
    assert untouched.any() and np.array_equal(result[untouched], source[untouched])
    assert not np.array_equal(result[painted], source[painted])
