"""/png_info through gradio_client on the served app (issue 15, item 2): an image Atelier just made, an A1111
PNG and a ComfyUI PNG each come back as their parameters; a PNG without any and a file that is no image
get a message that says so."""
import json

import PIL.Image
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from storage.artifacts import encode_png
from tests.test_png_info import A1111_TEXT, COMFY_GRAPH, COMFY_WORKFLOW


def png_at(tmp_path, name: str, texts: dict) -> str:
    path = tmp_path / name
    path.write_bytes(encode_png(PIL.Image.new("RGB", (40, 24), (200, 120, 30)), texts))
    return str(path)


def test_an_image_atelier_made_reads_back_its_settings(client):
    files, made = client.predict(prompt="a red kite over dunes", negative_prompt="blurry", model="demo-sd15",
                                 width=64, height=72, steps=3, cfg_scale=5.5, sampler="dpmpp_2m", schedule="karras",
                                 seed=4242, api_name="/txt2img")
    info = client.predict(image=handle_file(files[0]["image"]), api_name="/png_info")
    assert info["source"] == "atelier"
    assert {k: info[k] for k in ("prompt", "negative_prompt", "steps", "cfg_scale", "sampler", "schedule", "seed",
                                 "width", "height", "model")} == {
        "prompt": "a red kite over dunes", "negative_prompt": "blurry", "steps": 3, "cfg_scale": 5.5,
        "sampler": "dpmpp_2m", "schedule": "karras", "seed": made["seeds"][0], "width": 64, "height": 72,
        "model": "demo-sd15"}
    assert "Seed: 4242" in info["raw"]


def test_a1111_and_comfyui_pngs(client, tmp_path):
    a1111 = client.predict(image=handle_file(png_at(tmp_path, "a1111.png", {"parameters": A1111_TEXT})),
                           api_name="/png_info")
    assert (a1111["source"], a1111["sampler"], a1111["seed"], a1111["width"]) == ("a1111", "dpmpp_2m", 3735928559, 832)
    comfy_png = png_at(tmp_path, "comfy.png", {"prompt": json.dumps(COMFY_GRAPH),
                                               "workflow": json.dumps(COMFY_WORKFLOW)})
    comfy = client.predict(image=handle_file(comfy_png), api_name="/png_info")
    assert (comfy["source"], comfy["prompt"], comfy["steps"], comfy["height"]) == ("comfyui", "a lighthouse at dusk",
                                                                                    12, 384)


def test_no_parameters_and_no_image_say_so(client, tmp_path):
    with pytest.raises(AppError, match="carries no generation parameters"):
        client.predict(image=handle_file(png_at(tmp_path, "plain.png", {})), api_name="/png_info")
    text = tmp_path / "notes.png"
    text.write_text("hello, not a picture")
    with pytest.raises(AppError, match="not an image") as refused:
        client.predict(image=handle_file(str(text)), api_name="/png_info")
    assert "Traceback" not in str(refused.value)
