"""The API and the forms come from the node declarations (issue 12, item 3): what `Client.view_api()` shows of
each generation endpoint (names, int or float, choices, defaults, descriptions) is what pipelines/spec.py
declares, and a node kind declared here, in the test alone, gets an endpoint and a form the same way."""
import types
from dataclasses import dataclass
from typing import ClassVar

import gradio as gr
import pytest
from gradio_client import Client
from gradio_client.utils import json_schema_to_python_type

from configs import CreditPrices, Limits, ModelEntry, Style
from pipelines.compiler import Compiler
from pipelines.node import NodeKind, input_of, inputs_of
from pipelines.nodes import REGISTRY
from pipelines.samplers import SAMPLERS, SCHEDULES
from pipelines.spec import (Canny, Img2Img, Img2Vid, Inpaint, Interpolate, Outpaint, Txt2Img, Txt2Vid, Upscale,
                            param)

NODES = {"/txt2img": Txt2Img, "/img2img": Img2Img, "/inpaint": Inpaint, "/outpaint": Outpaint, "/upscale": Upscale,
         "/img2vid": Img2Vid, "/txt2vid": Txt2Vid, "/interpolate": Interpolate}
SAMPLING = ["negative_prompt", "model", "steps", "cfg_scale", "sampler", "schedule", "seed", "batch_size", "style"]
# ../shared/API.md's names, in the order scripts that pass them by position rely on.
NAMES = {
    "/txt2img": ["prompt", "negative_prompt", "model", "width", "height", "steps", "cfg_scale", "sampler", "schedule",
                 "seed", "batch_size", "style", "control_image", "control_model", "control_scale", "control_start",
                 "control_end", "canny_low", "canny_high", "hires_fix", "hires_scale", "hires_upscaler",
                 "hires_strength", "hires_steps"],
    "/img2img": ["image", "prompt", "strength", "negative_prompt", "model", "width", "height", "steps", "cfg_scale",
                 "sampler", "schedule", "seed", "batch_size", "style", "control_image", "control_model",
                 "control_scale", "control_start", "control_end", "canny_low", "canny_high"],
    "/inpaint": ["image", "mask", "prompt", "strength", "mask_blur", "invert_mask", "full_res", "full_res_padding",
                 "masked_content", *SAMPLING],
    "/outpaint": ["image", "left", "right", "top", "bottom", "prompt", "feather", "strength", "masked_content",
                  *SAMPLING],
    "/upscale": ["image", "scale", "upscaler", "steps", "seed", "tile_size"],
    "/img2vid": ["image", "frames", "fps", "motion_bucket_id", "noise_aug_strength", "decode_chunk_size", "seed",
                 "model", "width", "height", "steps", "cfg_scale", "min_cfg_scale", "prompt", "negative_prompt"],
    "/txt2vid": ["prompt", "negative_prompt", "frames", "fps", "steps", "cfg_scale", "seed", "model", "motion_adapter",
                 "width", "height", "sampler", "schedule", "style", "decode_chunk_size"],
    "/interpolate": ["video", "factor", "artifact_id", "method"],
}
FILES = {"image", "mask", "video", "control_image"}


def literal(*values) -> str:
    return "Literal[" + ", ".join(f"'{v}'" for v in values) + "]"


@pytest.fixture(scope="module")
def api(client):
    return client.view_api(return_format="dict", print_info=False)["named_endpoints"]


def parameters(api, endpoint) -> dict:
    return {p["parameter_name"]: p for p in api[endpoint]["parameters"]}


@pytest.mark.parametrize("endpoint", list(NAMES))
def test_each_generation_endpoint_takes_its_nodes_declared_parameters(api, endpoint):
    """Names in API.md's order; each declared parameter with its node's type, default and description."""
    shown = parameters(api, endpoint)
    assert list(shown) == NAMES[endpoint]
    for declared in inputs_of(NODES[endpoint]):
        if declared.name not in shown:
            continue
        p = shown[declared.name]
        assert p["python_type"]["description"] == declared.description, declared.name
        assert p["parameter_has_default"] and p["parameter_default"] == declared.default, declared.name
        if declared.choices is None:
            assert p["python_type"]["type"] == declared.type, declared.name
        else:
            assert p["python_type"]["type"].startswith("Literal["), declared.name
    for name in FILES & set(shown):       # a gr.File: Gradio checks the file was uploaded; the endpoint says what
        assert (shown[name]["component"], shown[name]["python_type"]["type"]) == ("File", "filepath")
        assert f" {name}: " in api[endpoint]["description"] and "handle_file(path)" in api[endpoint]["description"]


def test_integers_are_int_and_choices_are_the_catalogues(api):
    txt2img = parameters(api, "/txt2img")
    kinds = {name: txt2img[name]["python_type"]["type"] for name in ("steps", "batch_size", "seed", "cfg_scale",
                                                                       "width", "canny_low", "hires_scale")}
    assert kinds == {"steps": "int", "batch_size": "int", "seed": "int", "cfg_scale": "float", "width": "int",
                     "canny_low": "int", "hires_scale": "float"}
    # "" is each one's default: the model's own sampler, schedule, or the default model.
    assert txt2img["sampler"]["python_type"]["type"] == literal("", *SAMPLERS)
    assert txt2img["schedule"]["python_type"]["type"] == literal("", *SCHEDULES, "beta")   # beta: flow models
    assert txt2img["model"]["python_type"]["type"] == literal("", "demo-sd15", "demo-sd15-inpaint", "demo-sdxl",
                                                              "demo-flux1", "demo-sd35", "demo-qwen-image",
                                                              "demo-z-image", "demo-flux2-klein", "demo-flux2-dev",
                                                              "local-folder", "single-file")
    upscalers = literal("lanczos", "demo-upscaler-x4", "demo-latent-upscaler-x2")
    assert parameters(api, "/upscale")["upscaler"]["python_type"]["type"] == upscalers
    assert txt2img["hires_upscaler"]["python_type"]["type"] == upscalers
    assert parameters(api, "/img2vid")["model"]["python_type"]["type"] == literal("", "demo-svd", "demo-wan22",
                                                                                  "demo-ltx2")
    assert parameters(api, "/txt2vid")["model"]["python_type"]["type"] == literal(
        "", "demo-wan22", "demo-ltx2", "demo-sd15", "demo-sd15-inpaint", "local-folder", "single-file")
    assert parameters(api, "/interpolate")["factor"]["python_type"]["type"] == "Literal[2] | Literal[4]"
    assert parameters(api, "/inpaint")["masked_content"]["python_type"]["type"] == literal("original", "noise", "fill")


def test_an_endpoints_own_parameters_are_described_by_the_nodes_they_set(api):
    """canny_low/high are the canny node's thresholds, hires_* the hires fix's upscale and img2img repaint."""
    txt2img = parameters(api, "/txt2img")

    def said(name):
        return txt2img[name]["python_type"]["description"]

    assert said("canny_low").endswith(input_of(Canny, "low").description[1:])
    assert said("canny_high").endswith(input_of(Canny, "high").description[1:])
    assert said("hires_scale").endswith(input_of(Upscale, "scale").description[1:])
    assert said("hires_strength").endswith(input_of(Img2Img, "strength").description[1:])
    assert txt2img["hires_strength"]["parameter_default"] == 0.5 and said("hires_fix")


def test_view_api_text_names_types_and_descriptions(client):
    text = " ".join(client.view_api(return_format="str", print_info=False).split())
    assert ("[Api] steps: int | None (not required, defaults to: None) (Denoising steps; empty: the model's "
            "default.)") in text
    assert "[Api] batch_size: int (not required, defaults to: 1) (Images made per input image" in text


# -- a node kind declared here alone ------------------------------------------------------------------------


@dataclass(frozen=True)
class Posterize:
    """Fewer colours: each channel keeps `levels` values."""

    kind: ClassVar[str] = "posterize"
    inputs: ClassVar[dict[str, str]] = {"image": "IMAGE"}
    outputs: ClassVar[dict[str, str]] = {"images": "IMAGE"}

    levels: int = param(4, "Values each colour channel keeps.", low=2, high=64)
    amount: float | None = param(None, "How much of the effect to blend in; empty: all of it.", low=0.0, high=1.0)
    dither: str = param("none", "How the rounding error is spread.", choices=("none", "ordered", "floyd"))
    sampler: str = param("", "A sampler, to show a catalogue's choices; empty: none.", choices="sampler")
    steps: int = param(8, "Steps, up to the server's limit.", low=1, high="max_steps")
    keep_alpha: bool = param(True, "Keep the alpha channel.")


STYLES = (Style("None"), Style("Cinematic", "cinematic still of {prompt}", "cartoon"))


def toy_compiler() -> Compiler:
    """A compiler whose registry holds Posterize besides the built-in kinds (it is never asked to compile it)."""
    models = (ModelEntry(id="tiny", family="sd15", source="demo"),)
    registry = REGISTRY.with_nodes(NodeKind(Posterize, compile=None, steps=()))
    return Compiler(models, STYLES, Limits(max_steps=40), CreditPrices(), lambda entry: "sha256:" + "0" * 64,
                    registry=registry)


def test_a_node_declared_in_a_test_gets_typed_endpoint_parameters():
    from ui.fields import api_input, endpoint_fields, node_params

    fields = endpoint_fields(Posterize, toy_compiler())
    assert [f.name for f in fields] == ["image", "levels", "amount", "dither", "sampler", "steps", "keep_alpha"]
    with gr.Blocks():
        schemas = {f.name: api_input(f).api_info() for f in fields}
    assert {name: json_schema_to_python_type(schema) for name, schema in schemas.items()} == {
        "image": "filepath", "levels": "int", "amount": "float", "dither": literal("none", "ordered", "floyd"),
        "sampler": literal("", *SAMPLERS), "steps": "int", "keep_alpha": "bool"}
    assert schemas["steps"]["maximum"] == 40            # the [limits] bound, resolved
    for declared in inputs_of(Posterize):
        assert schemas[declared.name]["additional_description"] == declared.description
    # Values as a form or a call sends them: floats for ints, "" for unset text, names it does not declare.
    assert node_params(Posterize, {"levels": 8.0, "amount": None, "dither": "", "image": "x.png"}) == \
        Posterize(levels=8, amount=None, dither="none")


def test_a_node_declared_in_a_test_gets_a_form():
    from ui.fields import form_for

    with gr.Blocks():
        form = form_for(Posterize, toy_compiler())
    assert list(form) == ["image", "levels", "amount", "dither", "sampler", "steps", "keep_alpha"]
    assert isinstance(form["image"], gr.Image)
    assert (type(form["levels"]), form["levels"].minimum, form["levels"].maximum, form["levels"].value) == \
        (gr.Slider, 2, 64, 4)
    assert (type(form["amount"]), form["amount"].value) == (gr.Number, None)      # empty: the declared default
    assert type(form["dither"]) is gr.Dropdown
    assert [value for value, _ in form["dither"].choices] == ["none", "ordered", "floyd"]
    assert [value for value, _ in form["sampler"].choices] == ["", *SAMPLERS]   # "": the declared default
    assert form["steps"].maximum == 40
    assert (type(form["keep_alpha"]), form["keep_alpha"].value) == (gr.Checkbox, True)
    for declared in inputs_of(Posterize):
        assert form[declared.name].info == declared.description


def test_a_node_declared_in_a_test_appears_in_view_api(tmp_path):
    """The app's API built for a registry holding the toy: an endpoint named after it, typed and described."""
    from queueing.catalogue import ArtifactCatalogue
    from queueing.service import JobService
    from storage.blobs import LocalBlobStore
    from ui import api
    from ui.common import UIContext
    from ui.fields import FILE_TYPES

    compiler = toy_compiler()
    blobs = LocalBlobStore(tmp_path)
    service = JobService(compiler, lambda job_id, priority: None, blobs)
    ctx = UIContext(service=service, artifacts=ArtifactCatalogue(service, blobs),
                    models=tuple(compiler.models.values()), styles=(Style("None"),),
                    current_user=lambda request: types.SimpleNamespace(id="nobody"))
    with gr.Blocks() as demo:
        api.build(ctx)
    demo.queue()
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        shown = Client(url, verbose=False).view_api(return_format="dict", print_info=False)["named_endpoints"]
    finally:
        demo.close()
    toy = parameters(shown, "/posterize")
    assert shown["/posterize"]["description"] == Posterize.__doc__ + " image: " + FILE_TYPES["IMAGE"]
    assert {name: p["python_type"]["type"] for name, p in toy.items()} == {
        "image": "filepath", "levels": "int", "amount": "float", "dither": literal("none", "ordered", "floyd"),
        "sampler": literal("", *SAMPLERS), "steps": "int", "keep_alpha": "bool"}
    assert {name: p["parameter_default"] for name, p in toy.items() if name != "image"} == {
        "levels": 4, "amount": None, "dither": "none", "sampler": "", "steps": 8, "keep_alpha": True}
    assert not toy["image"]["parameter_has_default"]
    assert toy["levels"]["python_type"]["description"] == "Values each colour channel keeps."
    assert "/txt2img" in shown and "/canny" not in shown and "/load_image" not in shown


# -- the Gallery's "Use these settings" reads a plan back through its types (issue 12, item 4) ---------------


def test_use_these_settings_maps_the_plan_read_back_onto_the_form_and_it_makes_the_same_plan():
    from pipelines.spec import WorkflowSpec
    from ui.common import with_hires_fix
    from ui.fields import node_params
    from ui.gallery_tab import form_values

    compiler = toy_compiler()
    hires = {"hires_scale": 1.5, "hires_upscaler": "lanczos", "hires_strength": 0.4}
    asked = Txt2Img(prompt="a red fox", negative_prompt="blurry", style="Cinematic", seed=5, steps=12, cfg_scale=6.5,
                    sampler="euler", schedule="karras", width=256, height=192)
    plan = compiler.compile(with_hires_fix(WorkflowSpec.single(asked), hires))
    with gr.Blocks():
        weight = gr.Slider(-2, 2, value=0.8, step=0.05)
    values, control_id, notes = form_values(plan, "hires", STYLES, weight)
    assert (values["prompt"], values["negative_prompt"], values["style"]) == ("a red fox", "blurry", "Cinematic")
    assert {k: values[k] for k in ("model", "width", "height", "steps", "cfg_scale", "sampler", "schedule", "hires",
                                   "hires_scale", "hires_upscaler", "hires_strength", "control_model")} == {
        "model": "tiny", "width": 256, "height": 192, "steps": 12, "cfg_scale": 6.5, "sampler": "euler",
        "schedule": "karras", "hires": True, "hires_scale": 1.5, "hires_upscaler": "lanczos", "hires_strength": 0.4,
        "control_model": "None"}
    assert (control_id, notes) == ("", [])
    # The form as the Advanced tab reads it (ControlNet None; the seed comes from the image) makes the same plan.
    again = node_params(Txt2Img, {**values, "control_model": "", "seed": 5})
    assert compiler.compile(with_hires_fix(WorkflowSpec.single(again), values)).plan_hash == plan.plan_hash
