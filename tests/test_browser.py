"""The page in headless Chromium (Debian's package, driven by Playwright): type a prompt in the
Simple tab, press Generate, see the picture; then find it in the Gallery with its recipe."""
import contextlib
import os
import pathlib
import re
import shutil

import pytest

from configs import load_models
from tests.conftest import need
from ui.simple_tab import size_for

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
    assert int(re.search(r"step (\d+) of 150", shown).group(1)) < 150
    page.wait_for_selector("#adv-gallery :text('preview · step')", timeout=30000)   # the live preview
    page.click("#adv-cancel")
    # A cancel is information, not an error: it says where the job stopped, and no Error badge is left.
    page.wait_for_selector("#adv-summary :text('Cancelled at step')", timeout=60000)
    page.screenshot(path=str(SHOTS / "cancelled.png"), full_page=True)
    assert page.locator(".toast-body.error").count() == 0
    assert page.locator("#adv-gallery :text('Error')").count() == 0
    assert page.locator("#adv-gallery :text('preview · step')").count() == 1      # the last preview stays
    newest = atelier.service.recent(owner)[0]
    assert newest["status"] == "cancelled" and newest["progress"]["step"] < 150
    stopped_at = int(re.search(r"Cancelled at step (\d+)", page.inner_text("#adv-summary")).group(1))
    assert 0 < stopped_at < 150


def test_a_refused_request_keeps_the_previous_result(page):
    page.get_by_role("tab", name="Simple").click()
    page.fill("#simple-prompt textarea", "a harbour")
    earlier = page.inner_text("#simple-summary")             # an earlier test's result may be shown
    page.click("#simple-generate")
    page.wait_for_function("(earlier) => { const s = document.querySelector('#simple-summary').innerText;"
                           " return s.includes('Seeds:') && s !== earlier; }", arg=earlier, timeout=60000)
    before = page.locator("#simple-gallery .thumbnail-item img").first.get_attribute("src")
    page.fill("#simple-prompt textarea", "")
    page.click("#simple-generate")
    page.wait_for_selector(".toast-body.warning :text('prompt is empty')", timeout=30000)
    assert page.locator("#simple-gallery .thumbnail-item img").first.get_attribute("src") == before
    assert "Seeds:" in page.inner_text("#simple-summary")
    assert page.locator(".toast-body.error").count() == 0


# Each picture's box on the page, the box of the result panel it is in, and its file's size.
PICTURES = """(panel) => [...document.querySelectorAll(panel + ' .thumbnail-item img')].map(img => {
    const r = img.getBoundingClientRect(), g = document.querySelector(panel).getBoundingClientRect();
    return {width: r.width, height: r.height, top: r.top, bottom: r.bottom, left: r.left, right: r.right,
            panel: {top: g.top, bottom: g.bottom, left: g.left, right: g.right},
            file: [img.naturalWidth, img.naturalHeight], viewport: [innerWidth, innerHeight]};
})"""


@pytest.mark.parametrize("viewport", [(1440, 900), (390, 844)], ids=["desktop", "phone"])
def test_results_are_shown_whole_at_their_own_aspect_ratio(page, atelier, viewport):
    """A 16:9 and a 9:16 picture, each drawn whole: the box's aspect ratio is the file's, and it lies inside
    the result panel and, scrolled to, inside the viewport (Gradio's square cells cropped them)."""
    width, height = viewport
    model = load_models(atelier.settings.catalogue)[0]       # the Simple tab's model
    page.set_viewport_size({"width": width, "height": height})
    page.get_by_role("tab", name="Simple").click()
    try:
        for aspect in ("16:9", "9:16"):
            page.fill("#simple-prompt textarea", f"a {aspect} view")
            page.click(f"#simple-aspect label:has-text('{aspect}')")
            page.click("#simple-generate")
            w, h = size_for(aspect, model.width, model.height)
            page.wait_for_function("(want) => document.querySelector('#simple-summary')?.innerText.includes(want)",
                                   arg=f"{w}×{h}", timeout=90000)
            page.locator("#simple-gallery").scroll_into_view_if_needed()
            page.wait_for_function("document.querySelector('#simple-gallery .thumbnail-item img')?.complete")
            page.screenshot(path=str(SHOTS / f"whole_{aspect.replace(':', 'x')}_{width}.png"))
            (shown,) = page.evaluate(PICTURES, "#simple-gallery")
            file_w, file_h = shown["file"]
            assert abs(shown["width"] / shown["height"] - file_w / file_h) < 0.02, shown
            panel = shown["panel"]
            assert panel["top"] <= shown["top"] and shown["bottom"] <= panel["bottom"], shown
            assert panel["left"] <= shown["left"] and shown["right"] <= panel["right"], shown
            assert 0 <= shown["top"] and shown["bottom"] <= height and shown["right"] <= width, shown
    finally:
        page.set_viewport_size({"width": 1300, "height": 950})


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


def test_a_file_that_is_not_an_image_is_refused_in_words(page, tmp_path):
    """Gradio opened the upload with PIL and showed PIL's error, with the server's temporary path in it."""
    notes = tmp_path / "notes.png"
    notes.write_text("these are my notes, not a picture")
    page.get_by_role("tab", name="Img2img").click()
    page.set_input_files("#i2i-image input[type=file]", str(notes))
    toast = page.wait_for_selector(".toast-body:has-text('not an image Atelier can read')", timeout=30000)
    page.screenshot(path=str(SHOTS / "not_an_image.png"), full_page=True)
    assert "/tmp" not in toast.inner_text() and "cannot identify" not in toast.inner_text()
