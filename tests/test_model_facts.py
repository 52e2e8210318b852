"""What the compiler knows of the models and LoRA folders before a job runs (issue 12, item 2): requests the
worker would fail are refused when quoted, and quoting reads no model file or LoRA file again."""
import dataclasses
import os
import shutil
import unittest.mock

import pytest

from configs import CreditPrices, Limits, ModelEntry, Style, load_models
from pipelines.compiler import Compiler
from pipelines.errors import InvalidRequest
from pipelines.facts import InputFacts
from pipelines.loras import ExtrasIndex
from pipelines.model_facts import DEMO_INPAINTING, DEMO_UPSCALERS, ModelInspector
from pipelines.model_hashes import ModelHasher
from pipelines.spec import Inpaint, Link, LoadImage, LoadMask, Node, Txt2Img, Upscale, WorkflowSpec

STYLES = (Style("None"),)
DESCRIBE = lambda artifact_id, use: InputFacts(width=64, height=64)   # noqa: E731


def compiler_for(models, models_dir, extras=lambda kind: {}):
    inspector = ModelInspector(ModelHasher(models_dir))
    return Compiler(tuple(models), STYLES, Limits(), CreditPrices(), inspector.hash, extras=extras,
                    model_facts=inspector), inspector


def refused(compiler, spec):
    with pytest.raises(InvalidRequest) as info:
        compiler.compile(spec, describe=DESCRIBE)
    return {(p.code, p.field): p.message for p in info.value.problems}


def test_an_inpainting_model_asked_to_draw_from_text_is_refused_when_quoted(tmp_path):
    models = [ModelEntry(id="demo-sd15", family="sd15", source="demo"),
              ModelEntry(id="demo-sd15-inpaint", family="sd15", source="demo")]
    compiler, _ = compiler_for(models, tmp_path)
    problems = refused(compiler, WorkflowSpec.single(Txt2Img(prompt="fox", model="demo-sd15-inpaint")))
    assert problems == {("inpainting_model", "model"): "Model 'demo-sd15-inpaint' is an inpainting model; use it to "
                                                       "inpaint or outpaint, or choose one of ['demo-sd15']."}
    inpaint = WorkflowSpec(nodes=(Node("i", LoadImage(artifact_id="a" * 64)), Node("m", LoadMask(artifact_id="b" * 64)),
                                  Node("p", Inpaint(model="demo-sd15-inpaint", steps=2),
                                       (("image", Link("i", "image")), ("mask", Link("m", "mask"))))))
    assert compiler.compile(inpaint, describe=DESCRIBE).step("p").model.id == "demo-sd15-inpaint"


def test_a_single_file_of_another_family_is_refused_when_quoted(catalogue_file, tmp_path):
    entry = next(m for m in load_models(catalogue_file) if m.id == "single-file")
    wrong = dataclasses.replace(entry, id="wrong", family="sdxl")
    compiler, _ = compiler_for([wrong], tmp_path)
    problems = refused(compiler, WorkflowSpec.single(Txt2Img(prompt="fox", model="wrong")))
    assert problems[("family_mismatch", "model")].startswith(
        "Model 'wrong' is declared family = 'sdxl' in configs/models.toml, but its file tiny-sd15.safetensors holds "
        "an sd15 checkpoint.")
    no_config = dataclasses.replace(entry, id="bare", config="")
    compiler, _ = compiler_for([no_config], tmp_path)
    assert ("model_config_missing", "model") in refused(compiler, WorkflowSpec.single(Txt2Img(prompt="fox")))


def test_sources_the_model_cache_cannot_load_are_refused_when_quoted(tmp_path):
    models = [ModelEntry(id="demo-sd15", family="sd15", source="demo"),
              ModelEntry(id="demo-sd99", family="sd15", source="demo"),
              ModelEntry(id="hub-up", family="upscaler", source="hub:someone/upscaler"),
              ModelEntry(id="gone", family="sd15", source="folder:nowhere")]
    compiler, _ = compiler_for(models, tmp_path)
    assert refused(compiler, WorkflowSpec.single(Txt2Img(prompt="fox", model="demo-sd99"))) == {
        ("model_source", "model"): "No demo model 'demo-sd99'; the Stable Diffusion 1.5 demo models are "
                                   "['demo-sd15', 'demo-sd15-inpaint']. Give it a folder: or file: source in "
                                   "configs/models.toml."}
    upscale = WorkflowSpec(nodes=(Node("i", LoadImage(artifact_id="a" * 64)),
                                  Node("u", Upscale(upscaler="hub-up"), (("image", Link("i", "image")),))))
    assert ("upscaler_source", "u.upscaler") in refused(compiler, upscale)
    assert ("model_missing", "model") in refused(compiler, WorkflowSpec.single(Txt2Img(prompt="fox", model="gone")))


def test_the_demo_tables_match_the_builders(settings):
    """The pure tables the inspector reads agree with what the demo builders make."""
    from pipelines import control, demo_model
    from pipelines.model_facts import _folder_in_channels

    assert set(control.DEMO_UPSCALERS) == set(DEMO_UPSCALERS)
    for model_id in ("demo-sd15", "demo-sdxl", "demo-sd15-inpaint"):
        folder = demo_model.ensure_demo_model(settings.models_dir / "demo", model_id)
        assert (_folder_in_channels(folder) == 9) == (model_id in DEMO_INPAINTING), model_id


def test_quoting_reads_no_model_or_lora_file_again(catalogue_file, tmp_path):
    """After the first quote, hashes and LoRA lists come from memory: no file is opened, and each folder costs
    one stat; a LoRA added to the folder is seen at the next quote."""
    entry = next(m for m in load_models(catalogue_file) if m.id == "single-file")
    loras = tmp_path / "loras"
    loras.mkdir()
    shutil.copy(entry.source.removeprefix("file:"), loras / "first.safetensors")   # any sound safetensors file
    clock = [0.0]
    inspector = ModelInspector(ModelHasher(tmp_path), recheck_seconds=2.0, clock=lambda: clock[0])
    extras = ExtrasIndex(loras, tmp_path / "embeddings")
    compiler = Compiler((entry,), STYLES, Limits(), CreditPrices(), inspector.hash, extras=extras,
                        model_facts=inspector)
    spec = WorkflowSpec.single(Txt2Img(prompt="fox <lora:first:0.5>", seed=1))
    first = compiler.compile(spec)
    with unittest.mock.patch("builtins.open", side_effect=AssertionError("a file was opened")), \
            unittest.mock.patch("os.scandir", side_effect=AssertionError("a folder was listed")), \
            unittest.mock.patch("os.listdir", side_effect=AssertionError("a folder was listed")):
        assert compiler.compile(spec).plan_hash == first.plan_hash
    shutil.copy(loras / "first.safetensors", loras / "second.safetensors")
    os.utime(loras, ns=(1, 1))              # a listing change, whatever the file system's mtime resolution
    assert "second" in extras("lora")
    clock[0] = 3.0                          # past recheck_seconds: the model's files are looked at again
    assert compiler.compile(spec).plan_hash == first.plan_hash


def test_pricing_an_editing_request_stores_nothing(atelier, owner):
    """The price a tab shows while an image is chosen comes from the same request a submit would send, with
    the image checked but not stored: no artifact row and no blob until the request is accepted."""
    import hashlib
    import io

    import numpy as np
    import PIL.Image

    from pipelines.spec import Img2Img
    from storage.models import Artifact, ArtifactOwner
    from ui.common import node_request

    buffer = io.BytesIO()
    PIL.Image.fromarray(np.random.default_rng(1212).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    image = buffer.getvalue()
    artifact_id = hashlib.sha256(image).hexdigest()
    rows = (Artifact.select().count(), ArtifactOwner.select().count())
    service = atelier.service
    draft = node_request(service, owner, Img2Img, {"prompt": "ink", "strength": 0.5, "steps": 4}, image=image)
    plan = draft.quote(service, owner)
    assert plan.credits > 0 and plan.step(plan.steps[0].id).artifact_id == artifact_id
    assert (Artifact.select().count(), ArtifactOwner.select().count()) == rows
    assert Artifact.get_or_none(Artifact.id == artifact_id) is None
    assert not service.blobs.exists(f"{artifact_id}.png")
