"""The newer image families end to end (issue 13, items 2 and 7): each demo model makes an image through the
API and the queue, at the size asked, with its family's infotext; replays to the same bytes; runs the other
tasks its family declares; and bad input on it is refused before any job row exists."""
import hashlib

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from pipelines.families import FAMILIES
from pipelines.infotext import parse_infotext

FLOW_DEMOS = {"demo-flux1": "flux1", "demo-sd35": "sd35", "demo-qwen-image": "qwen-image",
              "demo-z-image": "z-image", "demo-flux2-klein": "flux2", "demo-flux2-dev": "flux2-dev"}


def sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="module")
def picture(tmp_path_factory):
    import numpy as np

    folder = tmp_path_factory.mktemp("family-inputs")
    x = np.linspace(0, 255, 64, dtype=np.uint8)[None, :].repeat(64, 0)
    Image.fromarray(np.stack([x, x.T, 255 - x], -1), "RGB").save(folder / "in.png")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    mask.save(folder / "mask.png")
    return {"image": str(folder / "in.png"), "mask": str(folder / "mask.png")}


def job_count() -> int:
    from storage.models import Job

    return Job.select().count()


@pytest.mark.parametrize("model", FLOW_DEMOS)
def test_each_family_makes_an_image_that_replays_byte_for_byte_and_says_how_it_was_made(client, model):
    family = FAMILIES[FLOW_DEMOS[model]]
    files, info = client.predict(prompt="a lighthouse at dusk", model=model, width=80, height=64, seed=7,
                                 api_name="/txt2img")
    path = files[0]["image"]
    image = Image.open(path)
    assert image.size == (80, 64) and sha256(path) == info["artifact_ids"][0]
    params = parse_infotext(image.text["parameters"])
    assert (params["Model"], params["Size"], params["Steps"], params["Seed"]) == (model, "80x64", "2", "7")
    assert params["Sampler"] == "Euler"
    guidance = f"{family.defaults.cfg_scale:g}"
    if family.guidance == "distilled":          # as Forge writes FLUX's guidance
        assert (params["CFG scale"], params["Distilled CFG Scale"]) == ("1", guidance)
    else:
        assert params["CFG scale"] == guidance and "Distilled CFG Scale" not in params
    replayed, outcome = client.predict(artifact_id=info["artifact_ids"][0], api_name="/replay")
    assert outcome["identical"] is True and sha256(replayed) == info["artifact_ids"][0]


@pytest.mark.parametrize("model", [m for m, f in FLOW_DEMOS.items() if "img2img" in FAMILIES[f].tasks])
def test_each_family_repaints_an_image_and_inpaints_inside_the_mask_only(client, picture, model):
    import numpy as np

    files, info = client.predict(image=handle_file(picture["image"]), prompt="a fox", model=model, strength=0.5,
                                 seed=3, api_name="/img2img")
    assert Image.open(files[0]["image"]).size == (64, 64)
    _, details = client.predict(artifact_id=info["artifact_ids"][0], api_name="/artifact_info")
    assert [p["relation"] for p in details["parents"]] == ["source"]
    files, _ = client.predict(image=handle_file(picture["image"]), mask=handle_file(picture["mask"]), model=model,
                              prompt="a red ball", strength=1.0, mask_blur=0, seed=3, api_name="/inpaint")
    result = np.asarray(Image.open(files[0]["image"]).convert("RGB"))
    original = np.asarray(Image.open(picture["image"]).convert("RGB"))
    outside = np.asarray(Image.open(picture["mask"])) == 0
    assert result.shape == original.shape and np.array_equal(result[outside], original[outside])
    assert not np.array_equal(result[~outside], original[~outside])


def test_bad_input_on_a_family_is_refused_before_any_job_row_exists(client, picture):
    before = job_count()
    refusals = {
        "width must be a multiple of 16 for FLUX.1 models, got 72; try 64":
            dict(prompt="a fox", model="demo-flux1", width=72, api_name="/txt2img"),
        "FLUX.1 models read no negative prompt":
            dict(prompt="a fox", model="demo-flux1", negative_prompt="blurry", api_name="/txt2img"),
        "Sampler 'ddim' does not apply to flow-matching models; choose one of euler, dpmpp_2m":
            dict(prompt="a fox", model="demo-sd35", sampler="ddim", api_name="/txt2img"),
        "Sampler 'dpmpp_2m' does not run on this model's pipeline; choose one of euler, lcm":
            dict(prompt="a fox", model="demo-z-image", sampler="dpmpp_2m", api_name="/txt2img"),
        "Schedule 'align_your_steps' does not apply to flow-matching models":
            dict(prompt="a fox", model="demo-qwen-image", schedule="align_your_steps", api_name="/txt2img"),
        "FLUX.2 models have no inpaint pipeline, so 'demo-flux2-klein' cannot do this; choose one of":
            dict(image=handle_file(picture["image"]), mask=handle_file(picture["mask"]), prompt="a ball",
                 model="demo-flux2-klein", api_name="/inpaint"),
    }
    for message, request in refusals.items():
        with pytest.raises(AppError, match=message.replace("(", r"\(").replace(")", r"\)")):
            client.predict(**request)
    assert job_count() == before


@pytest.mark.parametrize("model", ["demo-flux1", "demo-qwen-image-edit", "demo-flux2-klein", "demo-flux2-dev"])
def test_an_editing_model_edits_an_image_as_the_prompt_says(client, picture, model):
    files, info = client.predict(image=handle_file(picture["image"]), prompt="make the sky stormy", model=model,
                                 seed=4, api_name="/edit")
    image = Image.open(files[0]["image"])
    assert image.size == (64, 64) and sha256(files[0]["image"]) == info["artifact_ids"][0]
    params = parse_infotext(image.text["parameters"])
    assert (params["Model"], params["Seed"]) == (model, "4") and image.text["parameters"].startswith("make the sky")
    _, details = client.predict(artifact_id=info["artifact_ids"][0], api_name="/artifact_info")
    assert [p["relation"] for p in details["parents"]] == ["source"]
    replayed, outcome = client.predict(artifact_id=info["artifact_ids"][0], api_name="/replay")
    assert outcome["identical"] is True and sha256(replayed) == info["artifact_ids"][0]


def test_editing_with_a_model_that_does_not_edit_names_the_ones_that_do(client, picture):
    before = job_count()
    with pytest.raises(AppError, match=r"Stable Diffusion 3.5 models have no edit pipeline, so 'demo-sd35' cannot do "
                                       r"this; choose one of \['demo-flux1', 'demo-flux2-dev', 'demo-flux2-klein', "
                                       r"'demo-qwen-image-edit'\]"):
        client.predict(image=handle_file(picture["image"]), prompt="make it blue", model="demo-sd35",
                       api_name="/edit")
    with pytest.raises(AppError, match=r"LoRA 'ink' was made for UNet models \(SD1.5, SDXL\); 'demo-flux1' is a "
                                       r"FLUX.1 model"):
        client.predict(prompt="a fox <lora:ink:0.5>", model="demo-flux1", api_name="/txt2img")
    with pytest.raises(AppError, match=r"'demo-qwen-image-edit' is a qwen-image-edit model; its models do edit only"):
        client.predict(prompt="a fox", model="demo-qwen-image-edit", api_name="/txt2img")
    assert job_count() == before


def test_a_fill_model_inpaints_and_outpaints_and_draws_nothing_from_text_alone(client, picture):
    import numpy as np

    files, _ = client.predict(image=handle_file(picture["image"]), mask=handle_file(picture["mask"]),
                              model="demo-flux1-fill", prompt="a red ball", mask_blur=0, seed=3, api_name="/inpaint")
    result = np.asarray(Image.open(files[0]["image"]).convert("RGB"))
    original = np.asarray(Image.open(picture["image"]).convert("RGB"))
    outside = np.asarray(Image.open(picture["mask"])) == 0
    assert np.array_equal(result[outside], original[outside]) and not np.array_equal(result, original)
    files, _ = client.predict(image=handle_file(picture["image"]), left=32, model="demo-flux1-fill", prompt="more",
                              api_name="/outpaint")
    assert Image.open(files[0]["image"]).size == (96, 64)
    with pytest.raises(AppError, match=r"'demo-flux1-fill' is a flux1-fill model; its models do inpaint only"):
        client.predict(prompt="a fox", model="demo-flux1-fill", api_name="/txt2img")


@pytest.mark.parametrize("model, net", [("demo-flux1", "demo-controlnet-flux"), ("demo-sd35", "demo-controlnet-sd35")])
def test_a_controlnet_steers_a_model_of_its_family_and_replays(client, picture, model, net):
    import numpy as np

    plain, _ = client.predict(prompt="a fox", model=model, seed=6, api_name="/txt2img")
    files, info = client.predict(prompt="a fox", model=model, seed=6, control_image=handle_file(picture["image"]),
                                 control_model=net, api_name="/txt2img")
    steered = Image.open(files[-1]["image"])
    assert not np.array_equal(np.asarray(steered), np.asarray(Image.open(plain[0]["image"])))
    assert parse_infotext(steered.text["parameters"])["ControlNet 0"].startswith(f"Model: {net} [")
    _, details = client.predict(artifact_id=info["artifact_ids"][-1], api_name="/artifact_info")
    assert "control" in [p["relation"] for p in details["parents"]]
    replayed, outcome = client.predict(artifact_id=info["artifact_ids"][-1], api_name="/replay")
    assert outcome["identical"] is True and sha256(replayed) == info["artifact_ids"][-1], outcome
    with pytest.raises(AppError, match=f"ControlNet '{net}' is for .* models; 'demo-sd15' is sd15"):
        client.predict(prompt="a fox", model="demo-sd15", control_image=handle_file(picture["image"]),
                       control_model=net, api_name="/txt2img")


def test_a_controlnet_in_a_task_its_family_has_no_pipeline_for_is_refused(client, picture):
    with pytest.raises(AppError, match="Stable Diffusion 3.5 models take a ControlNet in txt2img only, not in img2img"):
        client.predict(image=handle_file(picture["image"]), prompt="a fox", model="demo-sd35",
                       control_image=handle_file(picture["image"]), control_model="demo-controlnet-sd35",
                       api_name="/img2img")
