"""The Video tab in headless Chromium (Debian's package, driven by Playwright): make a video from an
uploaded image and from a prompt, watch the progress, play it, interpolate it, download it as a GIF,
cancel a long one; and send a picture and a video to the tab from the Gallery."""
import io
import pathlib
import re

import numpy as np
import pytest
from PIL import Image

from tests.test_browser import SHOTS, app_page

# Every "step i of n" / "frame i of n" (decoding) text the page shows, recorded as it appears (the tiny
# models go through them faster than a poll would see).
WATCH_PROGRESS = """() => {
    window.seenProgress = new Set();
    new MutationObserver(() => {
        for (const text of document.body.innerText.match(/(frame|step) \\d+ of \\d+/g) || [])
            window.seenProgress.add(text);
    }).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""
PLAYED = """async () => {
    const video = document.querySelector('#video-player video');
    if (video.readyState < 1)
        await new Promise(done => video.addEventListener('loadedmetadata', done, {once: true}));
    return {duration: video.duration, width: video.videoWidth, height: video.videoHeight,
            error: video.error && video.error.code};
}"""


@pytest.fixture(scope="module")
def page(atelier):
    with app_page(atelier.url) as page:
        page.evaluate(WATCH_PROGRESS)
        yield page


@pytest.fixture(scope="module")
def picture(tmp_path_factory) -> str:
    x = np.linspace(0, 255, 64, dtype=np.uint8)[None, :].repeat(64, 0)
    path = tmp_path_factory.mktemp("browser-video") / "first-frame.png"
    Image.fromarray(np.stack([255 - x, x.T, x], -1), "RGB").save(path)
    return str(path)


def set_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def open_section(page, name: str) -> None:
    page.get_by_role("tab", name="Video", exact=True).click()
    page.get_by_role("tab", name=name).click()


def wait_for_video(page, summary: str) -> dict:
    """Wait until the summary says `summary` and the player's video has loaded; what it reports."""
    page.wait_for_selector(f"#video-summary :text('{summary}')", timeout=90000)
    page.wait_for_selector("#video-player video", timeout=10000)
    return page.evaluate(PLAYED)


def newest_job(atelier, owner):
    return atelier.service.job(owner, atelier.service.recent(owner)[0]["job_id"])


def test_image_to_video_shows_steps_then_decoded_frames_and_plays(page, picture, atelier, owner):
    open_section(page, "Image to video")
    page.set_input_files("#video-image input[type=file]", picture)
    page.wait_for_selector("#video-image img", timeout=10000)
    set_number(page, "i2v-frames", 24)
    set_number(page, "i2v-chunk", 1)              # one frame decoded at a time: 24 progress reports
    set_number(page, "i2v-seed", 7)
    page.wait_for_selector("#i2v-price :text('Free: local mode')", timeout=10000)
    page.evaluate("window.seenProgress.clear()")
    page.click("#i2v-generate")
    played = wait_for_video(page, "Image to video:")
    assert played["error"] is None and (played["width"], played["height"]) == (64, 64)
    assert played["duration"] == pytest.approx(24 / 7, abs=0.15)          # demo-svd's 7 fps
    seen = page.evaluate("[...window.seenProgress]")
    # In order of appearance: denoising steps (demo-svd takes 2), then the frames decoded one by one.
    kinds = [text.split()[0] for text in seen]
    assert "step" in kinds and "frame" in kinds and kinds.index("step") < kinds.index("frame"), seen
    assert all(text.endswith(" of 2") for text in seen if text.startswith("step")), seen
    assert all(text.endswith(" of 24") for text in seen if text.startswith("frame")), seen
    assert "24 frames at 7 fps" in page.inner_text("#video-summary")
    job = newest_job(atelier, owner)
    assert job.status == "succeeded" and json_plan_kind(job) == "img2vid"


def json_plan_kind(job) -> str:
    import json
    return json.loads(job.plan)["steps"][-1]["kind"]


def test_text_to_video_plays_then_interpolates_and_downloads(page):
    SHOTS.mkdir(exist_ok=True)
    open_section(page, "Text to video")
    page.fill("#t2v-prompt textarea", "a paper boat drifting on a pond")
    set_number(page, "t2v-frames", 6)
    page.click("#t2v-generate")
    played = wait_for_video(page, "Text to video:")
    assert played["error"] is None and played["duration"] == pytest.approx(6 / 8, abs=0.15)   # the adapter's 8 fps
    page.wait_for_timeout(500)                     # let the first frame paint
    page.screenshot(path=str(SHOTS / "video_tab.png"), full_page=True)

    page.click("#video-interpolate-2")
    played = wait_for_video(page, "11 frames at 16 fps")
    assert played["duration"] == pytest.approx(11 / 16, abs=0.15)
    assert "×2 by flow" in page.inner_text("#video-summary")
    page.click("#video-gif")
    link = page.wait_for_selector("#video-download a[download$='.gif']", timeout=30000)
    gif = Image.open(io.BytesIO(page.request.get(link.get_attribute("href")).body()))
    assert gif.format == "GIF" and gif.n_frames == 11

    page.locator("#video-interpolator input").fill("demo-rife")   # the learned interpolator, on the ×2 video
    page.keyboard.press("Enter")
    page.click("#video-interpolate-2")
    played = wait_for_video(page, "21 frames at 32 fps")
    assert "×2 by demo-rife" in page.inner_text("#video-summary")
    assert page.is_hidden("#video-download")                      # the GIF was of the video before
    page.screenshot(path=str(SHOTS / "video_interpolated.png"), full_page=True)


def test_cancel_stops_a_running_video(page, atelier, owner):
    open_section(page, "Text to video")
    page.fill("#t2v-prompt textarea", "a slow one")
    set_number(page, "t2v-steps", 150)
    page.click("#t2v-generate")
    shown = page.wait_for_selector("text=/step \\d+ of 150/", timeout=60000).inner_text()
    assert int(re.search(r"step (\d+) of 150", shown).group(1)) < 150
    page.wait_for_selector("#video-preview img", timeout=60000)          # the live preview, above the player
    page.click("#t2v-cancel")
    page.wait_for_selector("#video-summary :text('Cancelled at step')", timeout=30000)   # information, not an error
    page.screenshot(path=str(SHOTS / "video_cancelled.png"), full_page=True)
    assert page.is_visible("#video-preview img")                          # the last preview stays
    job = newest_job(atelier, owner)
    assert job.status == "cancelled" and job.progress_step < 150
    set_number(page, "t2v-steps", 3)


def test_gallery_sends_a_picture_and_a_video_to_the_video_tab(page, picture):
    import hashlib
    page.get_by_role("tab", name="Gallery").click()
    page.locator("#gallery-filter label", has_text="All").click()     # uploads and videos both
    upload = hashlib.sha256(pathlib.Path(picture).read_bytes()).hexdigest()
    page.wait_for_selector("#gallery-grid img[alt='upload']", timeout=30000)
    page.locator("#gallery-grid img[alt='upload']").first.click()
    page.wait_for_selector(f"#gallery-heading :text('{upload[:16]}')", timeout=10000)
    page.click("#gallery-send-video")
    page.wait_for_selector("#video-image img", state="visible", timeout=10000)
    assert page.get_by_role("tab", name="Image to video").get_attribute("aria-selected") == "true"

    page.get_by_role("tab", name="Gallery").click()
    page.locator("#gallery-grid img[alt^='video']").first.click()
    page.wait_for_selector("#gallery-heading :text('frames at')", timeout=10000)     # the recipe of a video
    page.click("#gallery-send-video")
    page.wait_for_selector("#video-summary :text('from the Gallery')", timeout=10000)
    assert page.evaluate(PLAYED)["duration"] > 0
    page.wait_for_selector("text=Image to video takes an image", timeout=10000)
    page.screenshot(path=str(SHOTS / "video_from_gallery.png"), full_page=True)
