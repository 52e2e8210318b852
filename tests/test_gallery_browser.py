"""The Gallery in headless Chromium at 1440×900 (issue 14, items 5 and 6): filter, page, search, lineage as
captioned thumbnails, download of the stored bytes, a share link, delete with a second click, and Send to
img2img carrying the prompt and settings. Screenshots: /tmp/shots/gallery_*.png."""
import hashlib
import io
import pathlib
import re
import uuid

import httpx
import PIL.Image
import pytest
from gradio_client import handle_file

from storage.artifacts import store_artifact
from tests.test_browser import app_page
from tests.test_gallery_settings import no_errors, wait_for_text, wait_for_value

SHOTS = pathlib.Path("/tmp/shots")
UPLOADS = 50            # more than a page (48)


@pytest.fixture(scope="module")
def page(atelier):
    SHOTS.mkdir(parents=True, exist_ok=True)
    with app_page(atelier.url) as page:
        page.set_viewport_size({"width": 1440, "height": 900})
        yield page


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"gallery_{name}.png"))


def count_text(page) -> str:
    return page.inner_text("#gallery-count").strip()


def choose_filter(page, label: str) -> None:
    page.locator("#gallery-filter label", has_text=label).click()


@pytest.fixture(scope="module")
def made(atelier, owner, client, tmp_path_factory):
    """UPLOADS small uploads of the owner's (through the storage layer), and an img2img of one of them with a
    prompt no other test uses. Returns (the img2img's info, its prompt, the upload it was made from)."""
    blobs, salt = atelier.service.blobs, uuid.uuid4().int
    for n in range(UPLOADS):
        buffer = io.BytesIO()
        PIL.Image.new("RGB", (32, 24), ((salt + n) % 256, n * 5 % 256, salt // 7 % 256)).save(buffer, format="PNG")
        store_artifact(blobs, buffer.getvalue(), owner=owner, kind="upload", mime="image/png", suffix=".png",
                       width=32, height=24)
    source = tmp_path_factory.mktemp("gallery") / "source.png"
    PIL.Image.new("RGB", (64, 64), (salt % 256, 120, 30)).save(source)
    prompt = f"a copper kettle {uuid.uuid4().hex[:8]}"
    _, info = client.predict(image=handle_file(str(source)), prompt=prompt, negative_prompt="blurry", strength=0.6,
                             steps=3, cfg_scale=6.5, sampler="euler", seed=321, api_name="/img2img")
    upload = atelier.artifacts.artifact_info(owner, info["artifact_ids"][0])["parents"][0]["artifact_id"]
    return info, prompt, upload


def test_filter_and_pages(page, atelier, owner, made):
    page.get_by_role("tab", name="Gallery", exact=True).click()
    wait_for_text(page, "#gallery-count", "items 1–")
    outputs = atelier.artifacts.browse(owner, "outputs")[1]
    assert count_text(page) == f"items 1–{min(outputs, 48)} of {outputs:,}".replace(",", " ")
    shot(page, "outputs")

    choose_filter(page, "Uploads")
    uploads = atelier.artifacts.browse(owner, "uploads")[1]
    assert uploads > 48
    wait_for_text(page, "#gallery-count", f"items 1–48 of {uploads}")
    assert page.locator("#gallery-grid img[alt='upload']").count() == 48
    page.click("#gallery-next")
    wait_for_text(page, "#gallery-count", f"items 49–{min(uploads, 96)} of {uploads}")
    assert page.locator("#gallery-grid img[alt='upload']").count() == min(uploads, 96) - 48
    shot(page, "uploads_page2")
    page.click("#gallery-previous")
    wait_for_text(page, "#gallery-count", f"items 1–48 of {uploads}")
    no_errors(page)


def open_by_search(page, prompt: str, artifact_id: str) -> None:
    choose_filter(page, "My outputs")
    page.fill("#gallery-search textarea, #gallery-search input", prompt)
    page.press("#gallery-search textarea, #gallery-search input", "Enter")
    wait_for_text(page, "#gallery-count", "items 1–1 of 1")
    page.locator(f"#gallery-grid img[src*='{artifact_id}']").first.click(timeout=60000)
    wait_for_text(page, "#gallery-heading", artifact_id[:16])


def test_search_lineage_download_and_share(page, atelier, made):
    info, prompt, upload = made
    picture = info["artifact_ids"][0]
    page.get_by_role("tab", name="Gallery", exact=True).click()
    open_by_search(page, prompt.split()[-1], picture)
    assert f"Prompt: {prompt}" in page.inner_text("#gallery-heading")
    lineage = page.locator("#gallery-lineage img[alt='repainted from']")
    lineage.first.wait_for(timeout=60000)
    assert "upscale_of" not in page.inner_text("#gallery-lineage") and "→" not in page.inner_text("#gallery-lineage")
    shot(page, "lineage")

    with page.expect_download(timeout=60000) as download:
        page.click("#gallery-download")
    saved = download.value
    assert saved.suggested_filename == f"atelier-321-{picture[:12]}.png"
    assert hashlib.sha256(pathlib.Path(saved.path()).read_bytes()).hexdigest() == picture   # the stored bytes

    page.click("#gallery-share")
    link = page.locator("#gallery-share-link textarea, #gallery-share-link input").first
    link.wait_for(timeout=60000)
    page.wait_for_function("() => /\\/share\\//.test(document.querySelector('#gallery-share-link textarea, "
                           "#gallery-share-link input')?.value || '')", timeout=60000)
    url = link.input_value()
    assert re.match(r"http://127\.0\.0\.1:\d+/share/\S+$", url), url
    assert picture in httpx.get(url, timeout=30).text
    shot(page, "share")

    lineage.first.click()                                    # walk to the upload it was made from
    wait_for_text(page, "#gallery-heading", upload[:16])
    page.wait_for_selector("#gallery-lineage img[alt='repainted into']", timeout=60000)
    no_errors(page)


def test_send_to_img2img_carries_the_prompt_and_settings(page, made):
    info, prompt, _ = made
    picture = info["artifact_ids"][0]
    page.get_by_role("tab", name="Gallery", exact=True).click()
    open_by_search(page, prompt.split()[-1], picture)
    page.click("#gallery-send-img2img")
    wait_for_value(page, "#i2i-prompt textarea", prompt)
    assert page.input_value("#i2i-negative textarea") == "blurry"
    if not page.locator("#i2i-steps").is_visible():           # steps, CFG and seed are in the Sampling fold
        page.locator("#i2i-sampling .label-wrap").first.click()
    assert page.input_value("#i2i-seed input") == "321"
    assert page.input_value("#i2i-steps input[type=number]") == "3"
    assert float(page.input_value("#i2i-cfg input[type=number]")) == 6.5
    page.wait_for_selector("#i2i-image img", state="visible", timeout=30000)
    shot(page, "send_img2img")
    no_errors(page)


def test_delete_takes_it_out_after_a_second_click(page, atelier, owner, made):
    info, prompt, _ = made
    picture = info["artifact_ids"][0]
    page.get_by_role("tab", name="Gallery", exact=True).click()
    open_by_search(page, prompt.split()[-1], picture)
    page.click("#gallery-delete")
    page.wait_for_selector("#gallery-delete-yes", state="visible", timeout=30000)
    shot(page, "delete_confirm")
    assert atelier.artifacts.browse(owner, "outputs", prompt)[1] == 1     # nothing deleted on the first click
    page.click("#gallery-delete-yes")
    wait_for_text(page, "#gallery-count", "Nothing matches the search.")
    assert atelier.artifacts.browse(owner, "outputs", prompt)[1] == 0
    assert page.locator("#gallery-grid img").count() == 0
    shot(page, "deleted")
    no_errors(page)


def test_replay_shows_its_progress(page, client):
    """While a replay runs the recipe panel shows "step i of n" (the result's Markdown is empty until the
    verdict), then the verdict."""
    word = uuid.uuid4().hex[:8]
    _, info = client.predict(prompt=f"a slow tide {word}", seed=8, steps=40, api_name="/txt2img")
    page.get_by_role("tab", name="Gallery", exact=True).click()
    open_by_search(page, word, info["artifact_ids"][0])
    page.click("#gallery-replay")
    shown = page.wait_for_function("() => (document.querySelector('#gallery-recipe')?.innerText || '')"
                                   ".match(/step (\\d+) of 40/)?.[1]", timeout=120000).json_value()
    assert 1 <= int(shown) <= 40
    shot(page, "replay_progress")
    page.wait_for_selector("#gallery-replay-result :text-matches('Identical:|Different:')", timeout=180000)
    no_errors(page)
