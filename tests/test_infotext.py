"""AUTOMATIC1111 infotext and the PNG text chunks it travels in."""
import io

import PIL.Image

from pipelines.infotext import parse_infotext
from pipelines.nodes import REGISTRY
from pipelines.plan import ModelRef, Txt2ImgStep
from storage.artifacts import encode_png, png_texts

MODEL = ModelRef(id="demo-sd15", family="sd15", source="demo", hash="sha256:" + "ab12cd34ef" + "0" * 54)


def step(**overrides):
    values = dict(id="1", model=MODEL, prompt="a photo of a cat", negative_prompt="blurry, lowres", width=512,
                  height=768, steps=20, cfg_scale=7.0, sampler="dpmpp_2m", schedule="karras", seeds=(1234, 1235))
    return Txt2ImgStep(**{**values, **overrides})


def test_infotext_has_the_a1111_layout():
    text = REGISTRY.infotext(step(), 1)
    prompt, negative, params = text.split("\n")
    assert prompt == "a photo of a cat"
    assert negative == "Negative prompt: blurry, lowres"
    assert params.startswith("Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1235, "
                             "Size: 512x768, Model hash: ab12cd34ef, Model: demo-sd15")


def test_infotext_round_trips_and_quotes_awkward_values():
    awkward = step(prompt="line one\nline two: with colon", negative_prompt="", style="Oil, Painting",
                   cfg_scale=6.5)
    parsed = parse_infotext(REGISTRY.infotext(awkward, 0))
    assert parsed["prompt"] == "line one\nline two: with colon"
    assert parsed["negative_prompt"] == ""
    assert parsed["Style"] == "Oil, Painting"
    assert (parsed["CFG scale"], parsed["Seed"], parsed["Size"]) == ("6.5", "1234", "512x768")


def test_png_carries_both_chunks_and_encodes_deterministically():
    image = PIL.Image.new("RGB", (16, 8), (200, 10, 30))
    texts = {"parameters": REGISTRY.infotext(step(), 0), "atelier": '{"plan": {}}'}
    data = encode_png(image, texts)
    assert data == encode_png(image, texts)
    assert png_texts(data) == texts
    assert PIL.Image.open(io.BytesIO(data)).getpixel((3, 3)) == (200, 10, 30)
