"""The habits of A1111 and Fooocus in headless Chromium (issue 14, item 5): Ctrl+Enter and Cmd+Enter
generate from a prompt box, Escape cancels the running job, ♻ and 🎲 set the seed, ⇅ swaps the size and
a preset sets it, and a PNG's parameters fill a form (dropped on Img2img's image, or on the Advanced tab's
PNG Info drop). Screenshots go to /tmp/shots/habits_*.png."""
import os
import pathlib
import re

import PIL.Image
import PIL.PngImagePlugin
import pytest

from tests.conftest import need, wait_until
from tests.test_browser import ARGS, CHROMIUM

SHOTS = pathlib.Path("/tmp/shots")
PNG_PROMPT = "a castle read from a png"
A1111_PARAMETERS = (f"{PNG_PROMPT}\nNegative prompt: blurry, lowres\n"
                    "Steps: 7, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5.5, Seed: 31337, Size: 64x96, "
                    "Model hash: 0123456789, Model: some-sd15-model, Version: v1.10.1")


@pytest.fixture(scope="module")
def browser(atelier):
    """One headless Chromium for the module (Playwright's sync API runs one at a time)."""
    if not os.path.exists(CHROMIUM):
        need("Debian's chromium is not installed (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


def open_app(browser, url: str, width: int, height: int):
    """A fresh page (its own cookies) showing the app at width × height, once the Simple tab is up."""
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.goto(url)
    page.wait_for_selector("#simple-prompt textarea", timeout=60000)
    return page


@pytest.fixture(scope="module")
def page(browser, atelier):
    page = open_app(browser, atelier.url, 1440, 900)
    yield page
    page.context.close()


def newest_job(atelier, owner) -> dict:
    return atelier.service.recent(owner)[0]


def number(page, elem_id: str) -> float:
    return float(page.input_value(f"#{elem_id} input[type=number]"))


def set_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def shown_seed(page, prefix: str) -> int:
    text = page.inner_text(f"#{prefix}-summary")
    return int(re.search(r"Seeds:\s*(\d+)", text).group(1))


def test_ctrl_enter_in_the_simple_prompt_generates(page, atelier, owner):
    before = len(atelier.service.recent(owner))
    page.fill("#simple-prompt textarea", "a lighthouse, by keyboard")
    page.press("#simple-prompt textarea", "Control+Enter")
    page.wait_for_selector("#simple-gallery img", timeout=120000)
    page.wait_for_selector("#simple-summary :text('Seeds:')", timeout=60000)
    page.screenshot(path=str(SHOTS / "habits_ctrl_enter.png"), full_page=True)
    assert page.input_value("#simple-prompt textarea") == "a lighthouse, by keyboard"     # no new line typed
    jobs = atelier.service.recent(owner)
    assert len(jobs) == before + 1 and jobs[0]["status"] == "succeeded"


def test_cmd_enter_then_reuse_and_random_seed(page, atelier, owner):
    page.get_by_role("tab", name="Advanced").click()
    page.wait_for_selector("#adv-seed input[type=number]", timeout=30000)
    page.fill("#adv-prompt textarea", "a harbour, by keyboard")
    page.press("#adv-negative textarea", "Meta+Enter")            # Cmd+Enter, from the negative prompt box
    page.wait_for_selector("#adv-summary :text('Seeds:')", timeout=120000)
    seed = shown_seed(page, "adv")
    assert number(page, "adv-seed") == -1
    page.click("#adv-seed-reuse")
    page.wait_for_function(f"document.querySelector('#adv-seed input[type=number]').value == '{seed}'",
                           timeout=30000)
    assert newest_job(atelier, owner)["status"] == "succeeded"
    page.screenshot(path=str(SHOTS / "habits_reuse_seed.png"), full_page=True)
    page.click("#adv-seed-random")
    page.wait_for_function("document.querySelector('#adv-seed input[type=number]').value == '-1'", timeout=30000)


def test_swap_and_size_presets(page):
    set_number(page, "adv-width", 128)
    set_number(page, "adv-height", 64)
    page.click("#adv-swap")
    page.wait_for_function("document.querySelector('#adv-width input[type=number]').value == '64'", timeout=30000)
    assert number(page, "adv-height") == 128
    # The demo model draws 64×64 and SD1.5 takes multiples of 8: 16:9 is 112×64 (the short side at its least).
    page.click("#adv-preset input")
    page.get_by_role("option", name="16:9 · 112×64").click()
    page.wait_for_function("document.querySelector('#adv-width input[type=number]').value == '112'", timeout=30000)
    assert number(page, "adv-height") == 64
    page.screenshot(path=str(SHOTS / "habits_size_preset.png"), full_page=True)
    set_number(page, "adv-width", 64)
    # Typed by hand, the size is no longer the preset's.
    page.wait_for_function("document.querySelector('#adv-preset input').value == ''", timeout=30000)


def test_escape_cancels_the_running_job(page, atelier, owner):
    page.fill("#adv-prompt textarea", "a slow one, stopped by Escape")
    for name, value in (("adv-steps", 150), ("adv-width", 256), ("adv-height", 256)):
        set_number(page, name, value)
    page.click("#adv-generate")
    wait_until(lambda: "Escape" in atelier.service.job(owner, newest_job(atelier, owner)["job_id"]).spec
               and newest_job(atelier, owner)["progress"]["step"] >= 1, "the slow job to take a step", timeout=120)
    page.keyboard.press("Escape")
    wait_until(lambda: newest_job(atelier, owner)["status"] == "cancelled", "Escape to cancel the job", timeout=120)
    page.screenshot(path=str(SHOTS / "habits_escape.png"), full_page=True)
    assert newest_job(atelier, owner)["progress"]["step"] < 150
    for name, value in (("adv-steps", 4), ("adv-width", 64), ("adv-height", 64)):
        set_number(page, name, value)


def test_a_png_dropped_on_img2img_fills_its_form(page, tmp_path):
    info = PIL.PngImagePlugin.PngInfo()
    info.add_text("parameters", A1111_PARAMETERS)
    path = tmp_path / "from_a1111.png"
    PIL.Image.new("RGB", (64, 96), (30, 120, 60)).save(path, pnginfo=info)
    page.get_by_role("tab", name="Img2img").click()
    page.set_input_files("#i2i-image input[type=file]", str(path))
    page.wait_for_selector("#i2i-png-notice :text('carries its parameters')", timeout=60000)
    assert "seed 31337" in page.inner_text("#i2i-png-notice")
    page.screenshot(path=str(SHOTS / "habits_png_offer.png"), full_page=True)
    page.click("#i2i-png-read")
    page.wait_for_function(f"document.querySelector('#i2i-prompt textarea').value == '{PNG_PROMPT}'",
                           timeout=30000)
    page.click("#i2i-sampling button, #i2i-sampling .label-wrap")                # unfold Sampling
    page.wait_for_selector("#i2i-steps input[type=number]", state="visible", timeout=30000)
    assert page.input_value("#i2i-negative textarea") == "blurry, lowres"
    assert number(page, "i2i-steps") == 7 and number(page, "i2i-cfg") == 5.5 and number(page, "i2i-seed") == 31337
    assert page.input_value("#i2i-sampler input") == "dpmpp_2m"
    assert page.input_value("#i2i-schedule input") == "karras"
    assert not page.locator("#i2i-png-read").is_visible()              # read: the offer goes away
    page.screenshot(path=str(SHOTS / "habits_png_read.png"), full_page=True)


def test_the_inpaint_tab_reads_a_png_from_its_own_drop(page, tmp_path):
    """The Inpaint editor hands over its canvas, not the dropped file, so the tab has a PNG Info drop."""
    info = PIL.PngImagePlugin.PngInfo()
    info.add_text("parameters", A1111_PARAMETERS)
    path = tmp_path / "to_inpaint.png"
    PIL.Image.new("RGB", (64, 96), (120, 30, 60)).save(path, pnginfo=info)
    page.get_by_role("tab", name="Inpaint").click()
    page.click("#inpaint-png-info-box button, #inpaint-png-info-box .label-wrap")
    page.set_input_files("#inpaint-png-info input[type=file]", str(path))
    page.wait_for_function(f"document.querySelector('#inpaint-prompt textarea').value == '{PNG_PROMPT}'",
                           timeout=30000)
    assert page.input_value("#inpaint-negative textarea") == "blurry, lowres"
    page.get_by_role("tab", name="Img2img").click()


def test_an_editing_tab_generates_by_keyboard_and_reuses_its_seed(page, atelier, owner):
    """Img2img, with the form the PNG filled in: Ctrl+Enter in its prompt runs it with the PNG's seed; 🎲 then
    ♻ puts that seed back."""
    page.press("#i2i-prompt textarea", "Control+Enter")
    page.wait_for_selector("#i2i-summary :text('Seeds:')", timeout=120000)
    assert shown_seed(page, "i2i") == 31337
    page.click("#i2i-seed-random")
    page.wait_for_function("document.querySelector('#i2i-seed input[type=number]').value == '-1'", timeout=30000)
    page.click("#i2i-seed-reuse")
    page.wait_for_function("document.querySelector('#i2i-seed input[type=number]').value == '31337'", timeout=30000)
    page.screenshot(path=str(SHOTS / "habits_img2img_seed.png"), full_page=True)


def test_every_seed_box_has_its_buttons(page):
    for tab, prefix, folded in (("Edit", "edit", True), ("Inpaint", "inpaint", True),
                                ("Outpaint", "outpaint", True), ("Upscale", "upscale", False),
                                ("Video", "i2v", False)):
        page.get_by_role("tab", name=tab, exact=True).click()
        if folded:                                  # a folded accordion's controls are drawn when it opens
            page.click(f"#{prefix}-sampling button, #{prefix}-sampling .label-wrap")
        for button in ("reuse", "random"):
            page.wait_for_selector(f"#{prefix}-seed-{button}", state="visible", timeout=30000)
    page.screenshot(path=str(SHOTS / "habits_video_tab.png"), full_page=True)
    page.get_by_role("tab", name="Text to video").click()
    set_number(page, "t2v-seed", 5)
    page.click("#t2v-seed-random")
    page.wait_for_function("document.querySelector('#t2v-seed input[type=number]').value == '-1'", timeout=30000)


def test_an_atelier_png_fills_the_advanced_form(page, atelier, owner):
    """The picture Cmd+Enter made, dropped on the Advanced tab's "Read a PNG's parameters"."""
    service = atelier.service
    job = next(job for job in (service.job(owner, j["job_id"]) for j in service.recent(owner))
               if job.status == "succeeded" and "a harbour, by keyboard" in job.spec)
    artifacts = atelier.artifacts
    holding = artifacts.holding(owner, job.artifact_ids[0])
    path = artifacts.artifact_path(holding.artifact)
    page.get_by_role("tab", name="Advanced").click()
    page.click("#adv-png-info-box button, #adv-png-info-box .label-wrap")
    page.set_input_files("#adv-png-info input[type=file]", str(path))
    page.wait_for_function("document.querySelector('#adv-prompt textarea').value == 'a harbour, by keyboard'",
                           timeout=30000)
    assert number(page, "adv-seed") == holding.seed
    page.screenshot(path=str(SHOTS / "habits_png_info_advanced.png"), full_page=True)


def test_on_a_phone_ctrl_enter_and_dice(browser, atelier, owner, tmp_path):
    info = PIL.PngImagePlugin.PngInfo()
    info.add_text("parameters", A1111_PARAMETERS)           # Size: 64x96, nearest the Simple tab's 2:3
    png = tmp_path / "for_simple.png"
    PIL.Image.new("RGB", (64, 96)).save(png, pnginfo=info)
    phone = open_app(browser, atelier.url, 390, 844)
    try:
        phone.click("#simple-png-info-box button, #simple-png-info-box .label-wrap")
        phone.set_input_files("#simple-png-info input[type=file]", str(png))
        phone.wait_for_function(f"document.querySelector('#simple-prompt textarea').value == '{PNG_PROMPT}'",
                                timeout=30000)
        assert phone.locator("#simple-aspect input[value='2:3']").is_checked()
        phone.fill("#simple-prompt textarea", "a lighthouse on a phone")
        phone.press("#simple-prompt textarea", "Control+Enter")
        phone.wait_for_selector("#simple-summary :text('Seeds:')", timeout=120000)
        phone.screenshot(path=str(SHOTS / "habits_phone_simple.png"), full_page=True)
        phone.get_by_role("tab", name="Advanced").click()
        set_number(phone, "adv-seed", 77)
        phone.click("#adv-seed-random")
        phone.wait_for_function("document.querySelector('#adv-seed input[type=number]').value == '-1'",
                                timeout=30000)
        phone.screenshot(path=str(SHOTS / "habits_phone_advanced.png"), full_page=True)
    finally:
        phone.context.close()
    assert newest_job(atelier, owner)["status"] == "succeeded"
