"""The compiler: validation messages, defaults, seeds, price and plan hash. No torch needed."""
import dataclasses
import json
import pathlib
import subprocess
import sys

import pytest

from configs import CreditPrices, Limits, ModelEntry, Style
from pipelines import Compiler, ExecutionPlan, InvalidRequest, Txt2Img, WorkflowSpec
from pipelines.model_hashes import ModelHasher

MODELS = (
    ModelEntry(id="tiny", family="sd15", source="demo", width=512, height=512, steps=20, cfg_scale=7.0,
               sampler="euler", schedule="normal"),
    ModelEntry(id="tiny-xl", family="sdxl", source="demo", width=1024, height=1024, steps=30, cfg_scale=5.0,
               sampler="dpmpp_2m", schedule="karras"),
)
STYLES = (Style("None"), Style("Cinematic", "cinematic still of {prompt}", "cartoon"))


@pytest.fixture
def compiler(tmp_path):
    seeds = iter(range(1000, 2000))
    return Compiler(MODELS, STYLES, Limits(), CreditPrices(), ModelHasher(tmp_path), seed_source=lambda: next(seeds))


def compile_one(compiler, **params):
    return compiler.compile(WorkflowSpec.single(Txt2Img(**params)))


def problems(compiler, **params):
    with pytest.raises(InvalidRequest) as info:
        compile_one(compiler, **params)
    return {p.field: p for p in info.value.problems}


def test_web_side_never_imports_torch():
    """The UI, the queue's web side and the compiler load without torch (DESIGN.md, rooms)."""
    code = ("import sys, ui, queueing, pipelines, storage, auth, configs; "
            "from pipelines.compiler import Compiler; "
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=pathlib.Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_defaults_come_from_the_model(compiler):
    step = compile_one(compiler, prompt="a fox", model="tiny-xl").steps[0]
    assert (step.width, step.height, step.steps, step.cfg_scale) == (1024, 1024, 30, 5.0)
    assert (step.sampler, step.schedule) == ("dpmpp_2m", "karras")
    assert compile_one(compiler, prompt="a fox").steps[0].model.id == "tiny"   # first entry is the default


def test_random_seed_becomes_concrete_and_batches_count_up(compiler):
    step = compile_one(compiler, prompt="a fox", batch_size=3).steps[0]
    assert step.seeds == (1000, 1001, 1002)
    assert compile_one(compiler, prompt="a fox", seed=42, batch_size=2).steps[0].seeds == (42, 43)


def test_style_is_applied_and_recorded(compiler):
    step = compile_one(compiler, prompt="a fox", negative_prompt="blurry", style="Cinematic").steps[0]
    assert step.prompt == "cinematic still of a fox"
    assert step.negative_prompt == "blurry, cartoon"
    assert step.style == "Cinematic"


@pytest.mark.parametrize("params, field, code, words", [
    ({"prompt": "  "}, "prompt", "empty_prompt", "prompt is empty"),
    ({"prompt": "x", "model": "sd99"}, "model", "unknown_model", "Unknown model 'sd99'"),
    ({"prompt": "x", "width": 500}, "width", "not_multiple_of_8", "multiple of 8, got 500; try 496"),
    ({"prompt": "x", "height": 4096}, "height", "out_of_range", "between 64 and 2048"),
    ({"prompt": "x", "steps": 0}, "steps", "out_of_range", "steps must be between 1 and 150"),
    ({"prompt": "x", "steps": 10_000}, "steps", "out_of_range", "got 10000"),
    ({"prompt": "x", "cfg_scale": 99.0}, "cfg_scale", "out_of_range", "between 0 and 30"),
    ({"prompt": "x", "cfg_scale": float("nan")}, "cfg_scale", "wrong_type", "must be a number"),
    ({"prompt": "x", "steps": "many"}, "steps", "wrong_type", "whole number"),
    ({"prompt": "x", "width": 512.5}, "width", "wrong_type", "whole number"),
    ({"prompt": "x", "batch_size": 100}, "batch_size", "out_of_range", "between 1 and 8"),
    ({"prompt": "x", "seed": -7}, "seed", "out_of_range", "Use -1 for a random seed"),
    ({"prompt": "x", "sampler": "magic"}, "sampler", "unknown_sampler", "Unknown sampler 'magic'"),
    ({"prompt": "x", "sampler": "euler_a", "schedule": "karras"}, "schedule", "unsupported_schedule", "karras"),
    ({"prompt": "x", "style": "Baroque"}, "style", "unknown_style", "Unknown style 'Baroque'"),
    ({"prompt": 42}, "prompt", "wrong_type", "must be text"),
])
def test_each_rule_has_a_clear_message(compiler, params, field, code, words):
    found = problems(compiler, **params)
    assert found[field].code == code
    assert words in found[field].message


def test_pixel_limit_is_checked_with_the_sides(compiler):
    compiler.limits = Limits(max_pixels=512 * 512)
    found = problems(compiler, prompt="x", width=1024, height=512)
    assert found["width"].code == "too_many_pixels"


def test_every_problem_is_reported_at_once(compiler):
    found = problems(compiler, prompt="", width=63, steps=0)
    assert set(found) >= {"prompt", "width", "steps"}


def test_plan_hash_is_stable_and_follows_the_recipe(compiler):
    a = compile_one(compiler, prompt="a fox", seed=5)
    b = compile_one(compiler, prompt="a fox", seed=5)
    c = compile_one(compiler, prompt="a fox", seed=6)
    assert a.plan_hash == b.plan_hash != c.plan_hash
    assert len(a.plan_hash) == 64
    assert ExecutionPlan.from_json(a.to_json()) == a
    assert a.steps[0].model.hash.startswith("sha256:")


def test_price_follows_pixels_family_and_batch(compiler):
    assert compile_one(compiler, prompt="x", width=512, height=512).credits == 1.0
    assert compile_one(compiler, prompt="x", width=1024, height=1024).credits == 4.0
    assert compile_one(compiler, prompt="x", model="tiny-xl", width=1024, height=1024).credits == 8.0
    assert compile_one(compiler, prompt="x", width=512, height=512, batch_size=3).credits == 3.0
    assert compile_one(compiler, prompt="x", width=64, height=64).credits == 0.5


def test_spec_round_trips_through_json():
    spec = WorkflowSpec.single(Txt2Img(prompt="a fox", width=512, cfg_scale=6.5, seed=7, style="Cinematic"))
    assert WorkflowSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize("text, words", [
    ("{not json", "not valid JSON"),
    ('{"nodes": {}}', '"nodes" list'),
    ('{"nodes": [{"kind": "dream"}]}', "Unknown node kind 'dream'"),
    ('{"nodes": [{"kind": "txt2img", "params": {"prompt": "x", "colour": 1}}]}', "Unknown parameter(s) ['colour']"),
])
def test_malformed_specs_are_refused(text, words):
    with pytest.raises(InvalidRequest) as info:
        WorkflowSpec.from_json(text)
    assert words in info.value.message


def test_one_vocabulary_for_spec_and_api(compiler):
    """The spec's field names are the API parameters, and the names AUTOMATIC1111 users know."""
    from ui import api
    fields = {f.name for f in dataclasses.fields(Txt2Img)} - {"loras"}   # API callers write <lora:name:w>
    assert fields >= {"prompt", "negative_prompt", "model", "width", "height", "steps", "cfg_scale", "sampler",
                      "schedule", "seed", "batch_size", "style"}
    parameters = {f.name for f in api.generation_fields("txt2img", compiler)}    # the endpoint's signature
    assert parameters == fields | {"control_image", "canny_low", "canny_high", "hires_fix", "hires_scale",
                                   "hires_upscaler", "hires_strength", "hires_steps"}


def test_missing_model_folder_is_a_clear_error(tmp_path):
    from pipelines.errors import AtelierError
    entry = ModelEntry(id="real", family="sd15", source="folder:nowhere")
    compiler = Compiler((entry,), STYLES, Limits(), CreditPrices(), ModelHasher(tmp_path))
    with pytest.raises(AtelierError, match="does not exist; fix its source"):
        compile_one(compiler, prompt="x")


def test_folder_models_are_hashed_by_content(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"a": 1}))
    hasher = ModelHasher(tmp_path)
    entry = ModelEntry(id="m", family="sd15", source="folder:m")
    first = hasher(entry)
    (folder / "model_index.json").write_text(json.dumps({"a": 2}))
    assert hasher(entry) != first


def test_every_seed_left_random_takes_the_requests_one_seed(compiler):
    """Nodes at seed -1 take the seed another node gives, or one drawn once; a Lanczos upscale takes 0."""
    from pipelines.spec import Img2Img, Link, Node, Upscale

    def graph(seed: int, upscaler: str = "lanczos") -> WorkflowSpec:
        return WorkflowSpec(nodes=(Node("t", Txt2Img(prompt="fox", width=64, height=64, seed=seed, batch_size=2)),
                                   Node("u", Upscale(upscaler=upscaler), (("image", Link("t", "images")),)),
                                   Node("i", Img2Img(prompt="fox", steps=4, strength=0.5),
                                        (("image", Link("u", "images")),))))

    given = compiler.compile(graph(4242))
    assert [step.seeds for step in given.steps] == [(4242, 4243), (0, 1), (4242, 4243)]
    assert compiler.compile(graph(4242)).plan_hash == given.plan_hash
    drawn = compiler.compile(graph(-1))
    assert [step.seeds for step in drawn.steps] == [(1000, 1001), (0, 1), (1000, 1001)]


def test_img2img_steps_that_repaint_nothing_are_refused(compiler):
    from pipelines.spec import Img2Img, Link, Node

    spec = WorkflowSpec(nodes=(Node("t", Txt2Img(prompt="fox", width=64, height=64, seed=1)),
                               Node("i", Img2Img(prompt="fox", steps=1, strength=0.5),
                                    (("image", Link("t", "images")),))))
    with pytest.raises(InvalidRequest, match=r"At strength 0\.5, 1 step\(s\) repaint nothing .* use at least 2 "
                                             r"steps") as refused:
        compiler.compile(spec)
    assert (refused.value.code, refused.value.field) == ("too_few_steps", "i.steps")


def test_a_plan_read_back_as_its_request_compiles_to_the_same_plan(compiler):
    """recipes.spec_of inverts the compiler for every node kind the catalogue here has (the replay check);
    the style label is the only field it cannot carry (the prompt already has the style applied)."""
    from pipelines import recipes
    from pipelines.spec import Canny, Img2Img, Inpaint, Link, LoadImage, LoadMask, Node, Outpaint, Upscale

    def describe(artifact_id, use):
        from pipelines.facts import InputFacts
        return InputFacts(width=96, height=80, mask_empty=False)

    spec = WorkflowSpec(nodes=(
        Node("src", LoadImage(artifact_id="a" * 64)), Node("mask", LoadMask(artifact_id="b" * 64)),
        Node("t", Txt2Img(prompt="fox", width=64, height=128, seed=-1, batch_size=2, style="Cinematic",
                          sampler="dpmpp_2m", schedule="karras", cfg_scale=6)),
        Node("c", Canny(low=50, high=150), (("image", Link("src", "image")),)),
        Node("i", Img2Img(prompt="ink", strength=0.6, steps=5, batch_size=2), (("image", Link("t", "images")),)),
        Node("p", Inpaint(prompt="moss", full_res=True, invert_mask=True, mask_blur=2, masked_content="noise"),
             (("image", Link("src", "image")), ("mask", Link("mask", "mask")))),
        Node("o", Outpaint(prompt="sky", left=16, top=8, feather=4), (("image", Link("src", "image")),)),
        Node("u", Upscale(scale=1.5), (("image", Link("o", "images")),)),
    ))
    plan = compiler.compile(spec, describe=describe)
    again = compiler.compile(recipes.spec_of(plan), describe=describe)
    assert recipes.mismatches(plan, again) == []
    assert again.plan_hash != plan.plan_hash                       # the style label differs, nothing else
    assert recipes.with_labels(again, plan).plan_hash == plan.plan_hash
    assert recipes.with_labels(again, plan).credits == plan.credits


def test_a_plan_this_server_would_not_make_is_named_field_by_field(compiler, tmp_path):
    from pipelines import recipes

    plan = compile_one(compiler, prompt="fox", width=64, height=64, seed=3, batch_size=2)
    forged = ExecutionPlan.from_dict(json.loads(plan.to_json().replace('"seeds":[3,4]', '"seeds":[3,99]')))
    other = Compiler(MODELS, STYLES, Limits(), CreditPrices(), lambda entry: "sha256:" + "f" * 64)
    moved = other.compile(recipes.spec_of(plan))
    [seeds] = recipes.mismatches(forged, compiler.compile(recipes.spec_of(forged)))
    assert (seeds.code, seeds.field) == ("not_replayable", "1.seeds") and "[3, 99]" in seeds.message
    [weights] = recipes.mismatches(plan, moved)
    assert weights.code == "model_changed" and "point 'tiny' in configs/models.toml at them" in weights.message


def test_video_plans_read_back_as_their_requests(tmp_path):
    """recipes.spec_of for the video kinds: a batch of AnimateDiff videos, SVD from an image, interpolation."""
    from pipelines import recipes
    from pipelines.facts import InputFacts
    from pipelines.spec import Img2Vid, Interpolate, Link, LoadImage, Node, Txt2Vid

    models = MODELS + (ModelEntry(id="svd", family="svd", source="demo", width=64, height=64, frames=8, fps=7,
                                  steps=2, cfg_scale=3.0),
                       ModelEntry(id="motion", family="animatediff", base_family="sd15", source="demo", width=64,
                                  height=64, frames=8, fps=8, steps=3, cfg_scale=7.5, sampler="ddim",
                                  schedule="normal"))
    compiler = Compiler(models, STYLES, Limits(), CreditPrices(), ModelHasher(tmp_path), seed_source=lambda: 9)
    spec = WorkflowSpec(nodes=(
        Node("a", Txt2Vid(prompt="waves", model="tiny", batch_size=2, frames=4)),
        Node("src", LoadImage(artifact_id="c" * 64)),
        Node("v", Img2Vid(frames=4, motion_bucket_id=90), (("image", Link("src", "image")),)),
        Node("f", Interpolate(factor=4), (("video", Link("v", "video")),)),
    ))
    describe = lambda artifact_id, use: InputFacts(width=64, height=64)   # noqa: E731
    plan = compiler.compile(spec, describe=describe)
    assert plan.step("a").seeds == (9, 10)
    assert recipes.mismatches(plan, compiler.compile(recipes.spec_of(plan), describe=describe)) == []


def test_a_plan_names_its_models_places_its_outputs_and_summarises_its_last_step(compiler):
    """What the job service, the worker and the pages read of a plan, through its types."""
    from pipelines.facts import InputFacts
    from pipelines.spec import Img2Img, Link, LoadImage, Node

    spec = WorkflowSpec(nodes=(Node("src", LoadImage(artifact_id="a" * 64)),
                               Node("t", Txt2Img(prompt="fox", model="tiny-xl", width=64, height=64, seed=7,
                                                 batch_size=2)),
                               Node("i", Img2Img(prompt="ink", strength=0.5, steps=4),
                                    (("image", Link("t", "images")),))))
    plan = compiler.compile(spec, describe=lambda artifact_id, use: InputFacts(width=64, height=64))
    assert plan.models() == {"tiny", "tiny-xl"}
    assert [plan.output_position(s, k) for s, k in (("t", 0), ("t", 1), ("i", 1), ("nope", 0))] == [0, 1, 3, None]
    assert plan.summary() == {"kind": "img2img", "prompt": "ink", "negative_prompt": "", "width": 64, "height": 64,
                              "steps": 4, "cfg_scale": 7.0, "sampler": "euler", "schedule": "normal", "style": "",
                              "strength": 0.5, "model": "tiny"}
    assert plan.summary("t")["model"] == "tiny-xl" and plan.summary("t")["width"] == 64
