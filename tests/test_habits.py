"""The habits of A1111 and Fooocus, without a browser: a PNG's parameters read into a form's names, the
♻ seed of a result, the size presets (issue 14, item 5). tests/test_browser_habits.py drives them."""
import io
import json
import math

import gradio as gr
import PIL.Image
import PIL.PngImagePlugin
import pytest

from pipelines.nodes import REGISTRY
from pipelines.plan import ExecutionPlan, ModelRef, Txt2ImgStep
from pipelines.samplers import SAMPLERS, SCHEDULES, a1111_labels, schedule_error
from storage.artifacts import encode_png
from ui.controls import ASPECTS, last_seed, preset_size
from pipelines.png_info import recipe_values, sampler_names
from ui.png_parameters import fill, form_values, nearest_aspect, png_parameters

MODEL = ModelRef(id="demo-sd15", family="sd15", source="demo", hash="sha256:" + "ab12cd34ef" + "0" * 54)
A1111_TEXT = ("masterpiece, a castle on a hill, <lora:detail:0.6>\n"
              "Negative prompt: lowres, bad anatomy\n"
              "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3735928559, "
              "Size: 832x1216, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Denoising strength: 0.4, "
              'Hires upscaler: "4x-UltraSharp", Version: v1.10.1')


def step(**overrides):
    values = dict(id="1", model=MODEL, prompt="a photo of a cat", negative_prompt="blurry, lowres", width=512,
                  height=768, steps=20, cfg_scale=7.0, sampler="dpmpp_2m", schedule="karras", seeds=(1234, 1235))
    return Txt2ImgStep(**{**values, **overrides})


def png_file(tmp_path, texts: dict, name="made.png") -> str:
    path = tmp_path / name
    path.write_bytes(encode_png(PIL.Image.new("RGB", (32, 48), (20, 90, 200)), texts))
    return str(path)


def test_a1111_parameters_become_the_forms_values():
    assert form_values(A1111_TEXT) == {
        "prompt": "masterpiece, a castle on a hill, <lora:detail:0.6>", "negative_prompt": "lowres, bad anatomy",
        "steps": 28, "cfg_scale": 6.5, "sampler": "dpmpp_2m", "schedule": "karras", "seed": 3735928559,
        "width": 832, "height": 1216}


def test_atelier_infotext_reads_back_what_made_it():
    """Every image an Atelier job writes carries this text; reading it gives the step's settings back."""
    made = step(sampler="euler_ancestral", schedule="normal", cfg_scale=4.5)
    values = form_values(REGISTRY.infotext(made, 1))
    assert values == {"prompt": "a photo of a cat", "negative_prompt": "blurry, lowres", "steps": 20,
                      "cfg_scale": 4.5, "sampler": "euler_ancestral", "schedule": "normal", "seed": 1235,
                      "width": 512, "height": 768}


def test_every_sampler_and_schedule_label_reads_back_to_its_name():
    for sampler in SAMPLERS:
        for schedule in SCHEDULES:
            if sampler == "euler_a" or schedule_error(sampler, schedule):
                continue
            labels = a1111_labels(sampler, schedule)
            assert sampler_names(*labels) == (sampler, schedule), labels


def test_older_and_unknown_sampler_labels():
    assert sampler_names("DPM++ 2M Karras") == ("dpmpp_2m", "karras")         # before "Schedule type" existed
    assert sampler_names("DPM++ SDE Exponential") == ("dpmpp_sde", "exponential")
    assert sampler_names("Euler a", "Automatic") == ("euler_ancestral", None)
    assert sampler_names("dpmpp_2m", "karras") == ("dpmpp_2m", "karras")        # ComfyUI names pass through
    assert sampler_names("Restart", "Karras") == (None, "karras")
    assert "sampler" not in form_values("a cat\nSteps: 20, Sampler: Restart, CFG scale: 7, Seed: 1")


def test_a_prompt_alone_or_odd_values_fill_only_what_they_can():
    assert form_values("just a prompt, no settings") == {"prompt": "just a prompt, no settings"}
    odd = form_values("a cat\nSteps: 20.5, Sampler: Euler, CFG scale: nan, Seed: -1, Size: 512 by 512")
    assert odd == {"prompt": "a cat", "sampler": "euler", "seed": -1}


def test_flux_reads_its_distilled_guidance():
    text = "a fox\nSteps: 20, Sampler: Euler, Schedule type: Simple, CFG scale: 1, Distilled CFG Scale: 3.5, Seed: 7"
    assert form_values(text)["cfg_scale"] == 3.5


def test_png_parameters_from_a_file_its_recipe_or_nothing(tmp_path):
    assert png_parameters(png_file(tmp_path, {"parameters": A1111_TEXT}))["seed"] == 3735928559

    plan = ExecutionPlan(steps=(step(),))
    recipe = {"plan": plan.recipe(), "plan_hash": "x", "step": "1", "index": 1, "environment": {}}
    only_recipe = png_file(tmp_path, {"atelier": json.dumps(recipe)}, "recipe.png")
    assert png_parameters(only_recipe) == {"prompt": "a photo of a cat", "negative_prompt": "blurry, lowres",
                                           "steps": 20, "cfg_scale": 7.0, "sampler": "dpmpp_2m",
                                           "schedule": "karras", "seed": 1235, "width": 512, "height": 768}
    assert recipe_values({"plan": {"steps": [{"id": "1", "kind": "upscale"}]}, "step": "1"}) == {}

    assert png_parameters(png_file(tmp_path, {}, "plain.png")) == {}
    assert png_parameters(png_file(tmp_path, {"atelier": "{not json"}, "broken.png")) == {}
    text_file = tmp_path / "notes.png"
    text_file.write_text("not an image at all")
    assert png_parameters(str(text_file)) == {}
    assert png_parameters(None) == {} and png_parameters("") == {}


def test_png_parameters_from_an_image_editors_value():
    """The Inpaint tab's editor hands over a PIL image, whose text chunks PIL keeps in `.info`."""
    info = PIL.PngImagePlugin.PngInfo()
    info.add_text("parameters", A1111_TEXT)
    buffer = io.BytesIO()
    PIL.Image.new("RGBA", (8, 8)).save(buffer, format="PNG", pnginfo=info)
    background = PIL.Image.open(io.BytesIO(buffer.getvalue()))
    assert png_parameters({"background": background, "layers": []})["steps"] == 28
    assert png_parameters({"background": None}) == {}


def test_fill_skips_what_the_form_lacks_or_the_model_does_not_offer():
    with gr.Blocks():
        form = {"prompt": gr.Textbox(), "sampler": gr.Dropdown(["euler", "dpmpp_2m"]), "steps": gr.Number(),
                "style": gr.Dropdown(["None", "Cinematic"], value="Cinematic")}
    values = form_values(A1111_TEXT)
    updates = fill(values, form, {"sampler": ("euler", "dpmpp_2m")})
    assert updates == {form["style"]: "None", form["prompt"]: values["prompt"], form["sampler"]: "dpmpp_2m",
                       form["steps"]: 28}
    with pytest.warns(UserWarning, match="not offered"):        # gr.Warning outside a request warns
        kept = fill(values, form, {"sampler": ("euler",)})
    assert form["sampler"] not in kept and kept[form["steps"]] == 28


def test_reuse_seed_takes_the_results_first_seed():
    assert last_seed({"seeds": [None, 4242, 4243]}) == 4242
    with pytest.warns(UserWarning, match="No result with a seed"):
        unchanged = last_seed(None)
    assert unchanged == gr.update()
    with pytest.warns(UserWarning):
        assert last_seed({"seeds": [None]}) == gr.update()


@pytest.mark.parametrize("native,multiple", [((512, 512), 8), ((1024, 1024), 16), ((64, 64), 8), ((2048, 2048), 64)])
def test_size_presets_keep_their_ratio_area_and_bounds(native, multiple):
    for aspect, (w_ratio, h_ratio) in ASPECTS.items():
        w, h = preset_size(aspect, *native, multiple, 64, 2048)
        assert w % multiple == 0 and h % multiple == 0 and 64 <= min(w, h) and max(w, h) <= 2048
        assert abs(math.log(w / h) - math.log(w_ratio / h_ratio)) < 0.12, (aspect, w, h)
        if native == (1024, 1024):
            assert abs(w * h / (1024 * 1024) - 1) < 0.1                       # about the native pixel count
    assert preset_size("1:1", *native, multiple, 64, 2048) == native


def test_nearest_aspect():
    ratios = {"1:1": (1, 1), "16:9": (16, 9), "9:16": (9, 16), "3:2": (3, 2)}
    assert nearest_aspect(832, 1216, ratios) == "9:16"
    assert nearest_aspect(768, 512, ratios) == "3:2"
    assert nearest_aspect(64, 64, ratios) == "1:1"
