"""PNG Info in headless Chromium (issue 15, item 2): a ComfyUI PNG dropped on the PNG Info tab shows its
parameters and "Send to txt2img" fills the Advanced form; an A1111 PNG goes to Img2img with its picture; a
PNG without parameters says so; an A1111 infotext pasted as the Advanced prompt fills the form on ↙.
Screenshots go to /tmp/shots/pnginfo_*.png."""
import json

import PIL.Image
import pytest

from storage.artifacts import encode_png
from tests.test_browser_habits import A1111_PARAMETERS, PNG_PROMPT, SHOTS, browser, number, open_app  # noqa: F401
from tests.test_png_info import COMFY_GRAPH, COMFY_WORKFLOW

# The graph of tests/test_png_info.py at a size the demo model's form takes.
SMALL_GRAPH = {**COMFY_GRAPH, "5": {"class_type": "EmptyLatentImage",
                                    "inputs": {"width": 64, "height": 96, "batch_size": 1}}}


@pytest.fixture(scope="module")
def page(browser, atelier):  # noqa: F811
    page = open_app(browser, atelier.url, 1440, 900)
    yield page
    page.context.close()


def png_at(tmp_path, name: str, texts: dict) -> str:
    path = tmp_path / name
    path.write_bytes(encode_png(PIL.Image.new("RGB", (64, 96), (40, 80, 160)), texts))
    return str(path)


def wait_for_value(page, selector: str, value: str) -> None:
    """Wait until the input at `selector` holds `value` (the tab sent to may not be drawn yet)."""
    page.wait_for_function("([s, v]) => (document.querySelector(s) || {}).value === v", arg=[selector, value],
                           timeout=30000)


def drop_on_png_info(page, path: str) -> None:
    page.get_by_role("tab", name="PNG Info").click()
    clear = page.locator("#pnginfo-file button[aria-label='Clear']")      # the file dropped before
    if clear.count():
        clear.click()
        page.wait_for_selector("#pnginfo-summary :text('Drop a PNG')", timeout=30000)
    page.set_input_files("#pnginfo-file input[type=file]", path)


def test_a_comfyui_png_shows_its_parameters_and_fills_txt2img(page, tmp_path):
    drop_on_png_info(page, png_at(tmp_path, "comfy.png", {"prompt": json.dumps(SMALL_GRAPH),
                                                         "workflow": json.dumps(COMFY_WORKFLOW)}))
    page.wait_for_selector("#pnginfo-summary :text('Made with ComfyUI')", timeout=60000)
    summary = page.inner_text("#pnginfo-summary")
    assert "a lighthouse at dusk" in summary and "seed 42" in summary and "64×96" in summary
    assert "euler_ancestral" in page.inner_text("#pnginfo-parameters")
    page.screenshot(path=str(SHOTS / "pnginfo_comfyui.png"), full_page=True)
    page.click("#pnginfo-send-advanced")
    wait_for_value(page, "#adv-prompt textarea", "a lighthouse at dusk")
    assert page.input_value("#adv-negative textarea") == "fog, blur"
    assert number(page, "adv-steps") == 12 and number(page, "adv-seed") == 42
    assert number(page, "adv-width") == 64 and number(page, "adv-height") == 96
    page.screenshot(path=str(SHOTS / "pnginfo_sent_to_txt2img.png"), full_page=True)


def test_an_a1111_png_goes_to_img2img_with_its_picture(page, tmp_path):
    drop_on_png_info(page, png_at(tmp_path, "a1111.png", {"parameters": A1111_PARAMETERS}))
    page.wait_for_selector("#pnginfo-summary :text('Made with AUTOMATIC1111')", timeout=60000)
    assert "seed 31337" in page.inner_text("#pnginfo-summary")
    page.click("#pnginfo-send-img2img")
    wait_for_value(page, "#i2i-prompt textarea", PNG_PROMPT)
    page.wait_for_selector("#i2i-image img", timeout=30000)          # the picture came too
    page.screenshot(path=str(SHOTS / "pnginfo_sent_to_img2img.png"), full_page=True)


def test_an_a1111_png_goes_to_inpaint(page, tmp_path):
    drop_on_png_info(page, png_at(tmp_path, "to_inpaint.png", {"parameters": A1111_PARAMETERS}))
    page.wait_for_selector("#pnginfo-summary :text('Made with AUTOMATIC1111')", timeout=60000)
    page.click("#pnginfo-send-inpaint")
    wait_for_value(page, "#inpaint-prompt textarea", PNG_PROMPT)
    assert page.input_value("#inpaint-negative textarea") == "blurry, lowres"
    # The picture came too: drawing it on the empty canvas is the editor's first undoable change.
    page.wait_for_selector("#inpaint-editor button[aria-label='Undo']:not([disabled])", timeout=30000)
    page.screenshot(path=str(SHOTS / "pnginfo_sent_to_inpaint.png"), full_page=True)


def test_a_png_without_parameters_says_so(page, tmp_path):
    drop_on_png_info(page, png_at(tmp_path, "plain.png", {}))
    page.wait_for_selector("#pnginfo-summary :text('carries no generation parameters')", timeout=60000)
    assert not page.locator("#pnginfo-send-advanced").is_enabled()
    page.screenshot(path=str(SHOTS / "pnginfo_nothing.png"), full_page=True)


def test_an_infotext_pasted_as_the_prompt_fills_the_form(page):
    page.get_by_role("tab", name="Advanced").click()
    page.fill("#adv-prompt textarea", A1111_PARAMETERS)
    page.click("#adv-paste")
    wait_for_value(page, "#adv-prompt textarea", PNG_PROMPT)
    assert page.input_value("#adv-negative textarea") == "blurry, lowres"
    assert number(page, "adv-steps") == 7 and number(page, "adv-seed") == 31337
    assert number(page, "adv-width") == 64 and number(page, "adv-height") == 96
    page.screenshot(path=str(SHOTS / "pnginfo_paste.png"), full_page=True)
