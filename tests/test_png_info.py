"""PNG Info without a server (issue 15, item 2): `pipelines.png_info.read_png_info` reads the parameters of
a PNG from A1111, ComfyUI (its API graph and UI workflow chunks, written here as ComfyUI saves them),
Fooocus and Atelier into one shape, and says clearly when a file is no image or carries nothing."""
import io
import json

import PIL.Image
import pytest

from pipelines.nodes import REGISTRY
from pipelines.plan import ExecutionPlan, ModelRef, Txt2ImgStep
from pipelines.png_info import INFO_NAMES, NoParameters, NotAnImage, read_png_info
from storage.artifacts import encode_png

A1111_TEXT = ("masterpiece, a castle on a hill, (sharp:1.2)\n"
              "Negative prompt: lowres, bad anatomy\n"
              "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3735928559, "
              "Size: 832x1216, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Version: v1.10.1")

# ComfyUI's SaveImage writes the API graph as the `prompt` text chunk and the editor's graph as `workflow`.
COMFY_GRAPH = {
    "3": {"class_type": "KSampler", "inputs": {
        "seed": 42, "steps": 12, "cfg": 6.5, "sampler_name": "euler_ancestral", "scheduler": "karras",
        "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 640, "height": 384, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at dusk", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "fog, blur", "clip": ["4", 1]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
}
COMFY_WORKFLOW = {"last_node_id": 9, "last_link_id": 9, "version": 0.4,
                  "nodes": [{"id": 3, "type": "KSampler", "widgets_values": [42, "fixed", 12, 6.5, "euler_ancestral",
                                                                             "karras", 1.0]}], "links": []}
MODEL = ModelRef(id="demo-sd15", family="sd15", source="demo", hash="sha256:" + "ab12cd34ef" + "0" * 54)


def png(texts: dict) -> bytes:
    return encode_png(PIL.Image.new("RGB", (32, 48), (20, 90, 200)), texts)


def made_step() -> Txt2ImgStep:
    return Txt2ImgStep(id="1", model=MODEL, prompt="a photo of a cat", negative_prompt="blurry, lowres", width=512,
                       height=768, steps=20, cfg_scale=7.0, sampler="euler_ancestral", schedule="normal",
                       seeds=(1234, 1235))


def test_an_a1111_png_reads_into_the_spec_names():
    info = read_png_info(png({"parameters": A1111_TEXT}))
    assert info == {"source": "a1111", "prompt": "masterpiece, a castle on a hill, (sharp:1.2)",
                    "negative_prompt": "lowres, bad anatomy", "steps": 28, "cfg_scale": 6.5, "sampler": "dpmpp_2m",
                    "schedule": "karras", "seed": 3735928559, "width": 832, "height": 1216,
                    "model": "sd_xl_base_1.0", "raw": A1111_TEXT}
    assert list(info) == [name for name in INFO_NAMES if name in info]


def test_a_comfyui_png_reads_its_api_graph():
    data = png({"prompt": json.dumps(COMFY_GRAPH), "workflow": json.dumps(COMFY_WORKFLOW)})
    info = read_png_info(data)
    assert info["source"] == "comfyui"
    assert {k: info[k] for k in ("prompt", "negative_prompt", "steps", "cfg_scale", "sampler", "schedule", "seed",
                                 "width", "height", "model")} == {
        "prompt": "a lighthouse at dusk", "negative_prompt": "fog, blur", "steps": 12, "cfg_scale": 6.5,
        "sampler": "euler_ancestral", "schedule": "karras", "seed": 42, "width": 640, "height": 384,
        "model": "v1-5-pruned-emaonly.safetensors"}
    assert '"KSampler"' in info["raw"]


def test_an_atelier_png_reads_its_infotext_and_without_it_its_recipe():
    step = made_step()
    recipe = {"plan": ExecutionPlan(steps=(step,)).recipe(), "plan_hash": "x", "step": "1", "index": 1,
              "environment": {}}
    both = read_png_info(png({"parameters": REGISTRY.infotext(step, 1), "atelier": json.dumps(recipe)}))
    expected = {"prompt": "a photo of a cat", "negative_prompt": "blurry, lowres", "steps": 20, "cfg_scale": 7.0,
                "sampler": "euler_ancestral", "schedule": "normal", "seed": 1235, "width": 512, "height": 768,
                "model": "demo-sd15"}
    assert both["source"] == "atelier" and {k: both[k] for k in expected} == expected
    only_recipe = read_png_info(png({"atelier": json.dumps(recipe)}))
    assert only_recipe["source"] == "atelier" and {k: only_recipe[k] for k in expected} == expected


def test_a_fooocus_png_with_its_json_scheme():
    scheme = {"prompt": "a red fox", "negative_prompt": "cartoon", "steps": 30, "guidance_scale": 4.0,
              "sampler": "dpmpp_2m_sde_gpu", "scheduler": "karras", "seed": "77", "resolution": "(1152, 896)",
              "base_model": "juggernautXL_v8Rundiffusion.safetensors", "base_model_hash": "aeb7e9e689",
              "version": "Fooocus v2.5.5",
              "styles": "['Fooocus V2']", "performance": "Speed"}
    info = read_png_info(png({"parameters": json.dumps(scheme), "fooocus_scheme": "fooocus"}))
    assert info["source"] == "fooocus"
    assert info["prompt"] == "a red fox" and info["negative_prompt"] == "cartoon"
    assert info["steps"] == 30 and info["seed"] == 77 and info["cfg_scale"] == 4.0
    assert (info["width"], info["height"], info["sampler"], info["schedule"]) == (1152, 896, "dpmpp_2m_sde",
                                                                                 "karras")
    assert "sampler" not in read_png_info(png({"parameters": json.dumps({**scheme, "sampler": "restart"})}))


def test_an_invokeai_png_with_its_metadata_chunk():
    metadata = {"generation_mode": "txt2img", "positive_prompt": "a quiet harbour", "negative_prompt": "people",
                "width": 768, "height": 512, "seed": 991, "cfg_scale": 6.0, "steps": 25, "scheduler": "dpmpp_2m_k",
                "model": {"model_name": "stable-diffusion-v1-5", "base_model": "sd-1", "model_type": "main"}}
    info = read_png_info(png({"invokeai_metadata": json.dumps(metadata)}))
    assert info["source"] == "invokeai"
    assert {k: info[k] for k in ("prompt", "negative_prompt", "steps", "cfg_scale", "sampler", "schedule", "seed",
                                 "width", "height", "model")} == {
        "prompt": "a quiet harbour", "negative_prompt": "people", "steps": 25, "cfg_scale": 6.0,
        "sampler": "dpmpp_2m", "schedule": "karras", "seed": 991, "width": 768, "height": 512,
        "model": "stable-diffusion-v1-5"}


def test_no_image_and_no_parameters_say_so():
    with pytest.raises(NotAnImage, match="not an image"):
        read_png_info(b"this is a text file, not a PNG")
    with pytest.raises(NoParameters, match="no generation parameters"):
        read_png_info(png({}))
    plain = io.BytesIO()
    PIL.Image.new("RGB", (8, 8)).save(plain, "JPEG")
    with pytest.raises(NoParameters):
        read_png_info(plain.getvalue())
    with pytest.raises(NoParameters):              # a broken recipe is no parameters, not a crash
        read_png_info(png({"atelier": "{not json", "prompt": "{not a graph"}))
