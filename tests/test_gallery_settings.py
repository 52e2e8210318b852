"""The Gallery tab in headless Chromium (issue 18, item 7): "Use these settings" fills the Advanced tab
with a recipe's LoRAs, ControlNet (and its stored control image) and hires fix, so that Generate makes
the same plan again; and walking the lineage thumbnails quickly never ends in an error."""
import re

import pytest
from PIL import Image

from tests.test_browser import SHOTS, app_page


def wait_for_text(page, selector: str, text: str, timeout: float = 60000) -> str:
    """Wait until the element's text contains `text`; returns the whole text."""
    page.wait_for_function("([s, t]) => (document.querySelector(s)?.innerText || '').includes(t)",
                           arg=[selector, text], timeout=timeout)
    return page.inner_text(selector)


def wait_for_value(page, selector: str, value: str, timeout: float = 60000) -> None:
    page.wait_for_function("([s, v]) => document.querySelector(s)?.value === v", arg=[selector, value],
                           timeout=timeout)


def no_errors(page) -> None:
    """No error toast, and no error shown over a component (Gradio's status tracker)."""
    toasts = page.locator(".toast-body.error")
    assert toasts.count() == 0, toasts.first.inner_text()
    badges = page.locator("[data-testid=status-tracker] .error:visible")
    assert badges.count() == 0, badges.first.evaluate("e => e.closest('[id]')?.id + ': ' + e.innerText")


@pytest.fixture(scope="module")
def page(atelier):
    with app_page(atelier.url) as page:
        yield page


@pytest.fixture(scope="module")
def control_picture(tmp_path_factory):
    """A grey square on black, as a one-channel PNG: the Advanced tab must send it on as it is, not as RGB."""
    image = Image.new("L", (64, 64), 0)
    image.paste(180, (12, 20, 44, 52))
    path = tmp_path_factory.mktemp("control") / "square.png"
    image.save(path, format="PNG")
    return str(path)


def open_gallery_at(page, artifact_id: str) -> None:
    """Open the Gallery, refresh it, and select `artifact_id` in the grid (its file is named by its id)."""
    page.get_by_role("tab", name="Gallery", exact=True).click()
    page.click("#gallery-refresh")
    thumbnail = page.locator(f"#gallery-grid img[src*='{artifact_id}']").first
    thumbnail.click(timeout=60000)
    wait_for_text(page, "#gallery-heading", artifact_id[:16])


def use_settings(page) -> None:
    """Press "Use these settings" and wait for the Advanced tab with both accordions open."""
    page.click("#gallery-reuse")
    page.wait_for_selector("#adv-prompt textarea", state="visible", timeout=60000)
    for accordion, inside in (("adv-controlnet", "adv-control-model"), ("adv-hires-lora", "adv-loras")):
        if not page.locator(f"#{inside}").is_visible():
            page.locator(f"#{accordion} .label-wrap").first.click()
    page.wait_for_selector("#adv-loras", state="visible", timeout=10000)
    page.wait_for_selector("#adv-control-model", state="visible", timeout=10000)


def number(page, elem_id: str) -> float:
    return float(page.input_value(f"#{elem_id} input[type=number]"))


def same_plan(page, atelier, owner, made: dict) -> None:
    """Generate on the Advanced tab runs the plan `made` (an endpoint's info) ran; where not, the steps' fields
    that differ are the message."""
    import json

    remade = generate_and_get_plan_hash(page, atelier, owner)
    if remade == made["plan_hash"]:
        return
    from storage.models import Job

    def steps(plan_hash):
        plan = json.loads(Job.get((Job.plan_hash == plan_hash) & (Job.owner == owner)).plan)
        return [{k: v for k, v in step.items()} for step in plan["steps"]]

    differ = [(i, k, a.get(k), b.get(k)) for i, (a, b) in enumerate(zip(steps(made["plan_hash"]), steps(remade)))
              for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    raise AssertionError(f"Generate made another plan; (step, field, recipe's, remade): {differ}")


def generate_and_get_plan_hash(page, atelier, owner) -> str:
    """Press Generate on the Advanced tab; the plan hash of the job it ran. The summary of the job before may
    be shown again while the page updates, so the wait is for another job id, not for other text."""
    shown = re.search(r"Job:\s*(\S+)", page.inner_text("#adv-summary"))
    page.click("#adv-generate")
    page.wait_for_function("previous => { const t = document.querySelector('#adv-summary')?.innerText || '';"
                           " const m = t.match(/Job:\\s*(\\S+)/); return m && m[1].replace(/`/g, '') !== previous; }",
                           arg=shown.group(1).strip("`") if shown else "", timeout=120000)
    no_errors(page)
    job_id = re.search(r"Job:\s*(\S+)", page.inner_text("#adv-summary")).group(1).strip("`")
    job = atelier.service.job(owner, job_id)
    assert job.status == "succeeded"
    return job.plan_hash


def test_use_these_settings_carries_loras_and_controlnet(page, atelier, owner, client, control_picture):
    from gradio_client import handle_file

    _, made = client.predict(prompt="a window, <lora:ink:0.7>", negative_prompt="grey", style="Cinematic", seed=5,
                             control_image=handle_file(control_picture),
                             control_model="demo-controlnet-canny", canny_low=50, canny_high=150,
                             control_scale=0.75, control_start=0.1, control_end=0.9, api_name="/txt2img")
    picture = made["artifact_ids"][-1]
    open_gallery_at(page, picture)
    use_settings(page)

    # The style's template taken off again, and the tag in the LoRA list instead.
    wait_for_value(page, "#adv-prompt textarea", "a window")
    assert page.input_value("#adv-negative textarea") == "grey"
    assert page.input_value("#adv-style input") == "Cinematic"
    assert page.locator("#adv-loras").inner_text().split() == ["LoRAs", "ink"], page.inner_text("#adv-loras")
    assert number(page, "adv-lora-weight") == 0.7
    assert page.input_value("#adv-control-model input") == "demo-controlnet-canny"
    assert page.locator("#adv-preprocess input[value=canny]").is_checked()
    assert (number(page, "adv-canny-low"), number(page, "adv-canny-high")) == (50, 150)
    assert [number(page, f"adv-control-{n}") for n in ("scale", "start", "end")] == [0.75, 0.1, 0.9]
    assert number(page, "adv-seed") == 5
    shown = page.locator("#adv-control-image img")
    shown.wait_for(timeout=30000)
    page.wait_for_function("img => img.complete && img.naturalWidth === 64", arg=shown.element_handle(),
                           timeout=30000)
    no_errors(page)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "gallery_use_settings.png"), full_page=True)

    same_plan(page, atelier, owner, made)


def test_use_these_settings_carries_a_hires_fix_and_lora_weights(page, atelier, owner, client):
    _, made = client.predict(prompt="a tower, <lora:ink:0.55>, <lora:paper:-0.3>", seed=9, hires_fix=True,
                             hires_scale=1.5, hires_strength=0.4, api_name="/txt2img")
    open_gallery_at(page, made["artifact_ids"][-1])
    use_settings(page)

    # Two weights, so both LoRAs go back into the prompt as tags; the ControlNet of the last recipe is gone.
    wait_for_value(page, "#adv-prompt textarea", "a tower, <lora:ink:0.55>, <lora:paper:-0.3>")
    assert page.locator("#adv-loras").inner_text().split() == ["LoRAs"]
    assert page.input_value("#adv-control-model input") == "None"
    assert page.locator("#adv-control-image img").count() == 0
    assert page.locator("#adv-hires input[type=checkbox]").is_checked()
    assert (number(page, "adv-hires-scale"), number(page, "adv-hires-strength")) == (1.5, 0.4)
    assert page.input_value("#adv-hires-upscaler input") == "lanczos"
    no_errors(page)
    page.screenshot(path=str(SHOTS / "gallery_use_settings_hires.png"), full_page=True)

    same_plan(page, atelier, owner, made)


def pick(page, artifact_id: str) -> None:
    """Select the lineage thumbnail of `artifact_id` (its file is named by its id)."""
    page.locator(f"#gallery-lineage img[src*='{artifact_id}']").first.click(timeout=60000)


def test_walking_the_lineage_quickly_never_errs(page, atelier, owner, client):
    _, made = client.predict(prompt="a bridge", seed=11, hires_fix=True, hires_scale=1.5, api_name="/txt2img")
    top = made["artifact_ids"][-1]                 # txt2img -> upscale -> repaint: walk down and up the chain
    open_gallery_at(page, top)
    here, going_up = top, True
    for step in range(25):
        info = atelier.artifacts.artifact_info(owner, here)
        links = info["parents"] if going_up else info["children"]
        if not links:
            going_up = not going_up
            links = info["parents"] if going_up else info["children"]
        target = links[0]["artifact_id"]
        # Pick as soon as the thumbnail is there: the previous step's lineage has just arrived.
        pick(page, target)
        wait_for_text(page, "#gallery-heading", target[:16])
        no_errors(page)
        here = target
    # The thumbnails are captioned in words ("upscaled from"), not "upscale_of ← cfb0e78e9b0e…".
    from ui.gallery_tab import CHILD_WORDS, PARENT_WORDS
    captions = page.locator("#gallery-lineage img").evaluate_all("images => images.map(i => i.alt)")
    assert captions and set(captions) <= {*PARENT_WORDS.values(), *CHILD_WORDS.values()}, captions


def test_replay_shows_the_services_verdict(page, atelier, owner, client):
    """The panel shows the verdict the service wrote for the replay job, as Markdown."""
    _, made = client.predict(prompt="a lantern", seed=13, api_name="/txt2img")
    open_gallery_at(page, made["artifact_ids"][0])
    page.click("#gallery-replay")
    page.wait_for_selector("#gallery-replay-result :text-matches('Identical:|Different:')", timeout=120000)
    no_errors(page)
    replay = atelier.service.job(owner, atelier.service.recent(owner)[0]["job_id"])
    assert replay.replay_of == made["artifact_ids"][0]
    verdict = atelier.artifacts.replay_outcome(owner, replay)["verdict"]
    assert page.inner_text("#gallery-replay-result").strip() == verdict.replace("**", "").replace("`", "")
