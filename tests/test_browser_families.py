"""The Advanced tab follows the chosen model's family (issue 13): picking a flow-matching model offers only the
samplers that apply to it, names its guidance and closes the negative prompt where the family reads none;
then it generates. In headless Chromium; the screenshot is tests/_artifacts/advanced_flux.png."""
import pytest

from pipelines.samplers import family_samplers
from tests.test_browser import SHOTS, app_page


@pytest.fixture(scope="module")
def page(atelier):
    with app_page(atelier.url) as page:
        yield page


def choose(page, dropdown: str, value: str) -> None:
    page.click(f"#{dropdown} input")
    page.locator(f"#{dropdown}").get_by_role("option", name=value, exact=True).click()
    page.wait_for_selector(f"#{dropdown} [role=option]", state="detached", timeout=10000)


def options(page, dropdown: str) -> list[str]:
    """The choices the dropdown lists when opened (its own list: each dropdown renders its options inside it)."""
    page.click(f"#{dropdown} input")
    listed = page.locator(f"#{dropdown}").get_by_role("option")
    listed.first.wait_for(timeout=10000)
    names = [o.replace("✓", "").strip() for o in listed.all_inner_texts()]   # ✓ marks the value
    page.keyboard.press("Escape")
    page.wait_for_selector(f"#{dropdown} [role=option]", state="detached", timeout=10000)
    return names


def test_choosing_a_flux_model_offers_its_samplers_and_generates(page):
    SHOTS.mkdir(exist_ok=True)
    page.get_by_role("tab", name="Advanced").click()
    page.wait_for_selector("#adv-model input", timeout=10000)
    assert "ddim" in options(page, "adv-sampler")                 # SD1.5, the default model: every sampler
    choose(page, "adv-model", "demo-flux1")
    page.wait_for_function("document.querySelector('#adv-negative textarea').disabled", timeout=10000)
    assert options(page, "adv-sampler") == list(family_samplers("flow"))
    assert page.input_value("#adv-sampler input") == "euler"
    assert "Distilled guidance" in page.inner_text("#adv-cfg")
    assert "read no negative prompt" in page.get_attribute("#adv-negative textarea", "placeholder")
    page.fill("#adv-prompt textarea", "a lighthouse at dusk")
    page.click("#adv-generate")
    page.wait_for_selector("#adv-summary :text('Seeds:')", timeout=60000)
    page.screenshot(path=str(SHOTS / "advanced_flux.png"), full_page=True)
    assert "demo-flux1 · 64×64" in page.inner_text("#adv-summary")
    choose(page, "adv-model", "demo-sd15")                         # and back: every sampler again
    page.wait_for_function("!document.querySelector('#adv-negative textarea').disabled", timeout=10000)
    assert "ddim" in options(page, "adv-sampler")
