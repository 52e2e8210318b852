"""The model family declarations (issue 13, item 1): each family is declared once, completely, and the
catalogue, samplers, demo builders and diffusers agree with the declarations."""
import diffusers
import pytest

from configs import load_models
from pipelines.families import FAMILIES
from pipelines.family import GUIDANCE, SCHEDULING, SOURCES, TASKS
from pipelines.samplers import family_samplers, family_schedule_error, family_schedules

FAMILY_NAMES = [f.name for f in FAMILIES]


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_every_family_is_declared_completely(name):
    family = FAMILIES[name]
    assert family.label and family.media in ("image", "video")
    assert family.tasks and set(family.tasks) <= set(TASKS), family.tasks
    assert family.denoiser in ("unet", "transformer") and family.scheduling in SCHEDULING
    assert family.guidance in GUIDANCE and set(family.sources) <= set(SOURCES)
    assert family.demos, f"{name} has no demo model"
    assert all(":" in builder for builder in family.demos.values())
    made = {"image": {"txt2img", "img2img", "inpaint", "edit", "control"}, "video": {"img2vid", "txt2vid"}}
    assert set(family.tasks) <= made[family.media], f"{name} declares tasks that make another medium"
    d = family.defaults
    assert d.width % family.size_multiple == 0 and d.height % family.size_multiple == 0
    assert d.steps >= 1 and d.cfg_scale >= 0
    if family.scheduling != "edm":
        assert family_schedule_error(family.scheduling, d.sampler, d.schedule) is None
    if family.media == "video":
        assert d.frames and d.fps and family.frames_error(d.frames) is None
    if family.guidance == "distilled":
        assert not family.negative_prompt, "distilled guidance reads no negative prompt"
    # live previews (issue 14, item 1): every family says how its latents look in RGB
    assert family.latent_rgb, f"{name} declares no latent-to-RGB projection for previews"
    assert all(len(row) == 3 for p in family.latent_rgb for row in p.factors) and family.latent_layout in (
        "channels_first", "frames_first")


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_every_declared_pipeline_class_is_in_diffusers(name):
    family = FAMILIES[name]
    for task, cls in {**family.tasks, **{f"control {t}": c for t, c in family.control_tasks.items()}}.items():
        assert isinstance(getattr(diffusers, cls, None), type), f"{name}: {task} names {cls}, not in diffusers"
    if family.control_tasks:
        assert isinstance(getattr(diffusers, family.controlnet_class, None), type)


def test_every_demo_model_of_every_family_is_in_the_shipped_catalogue():
    shipped = {m.id: m for m in FAMILIES.catalogue(load_models())}
    for family in FAMILIES:
        for model_id in family.demos:
            assert model_id in shipped, f"configs/models.toml lacks the {family.label} demo {model_id!r}"
            assert shipped[model_id].family == family.name and shipped[model_id].is_demo
        for model_id in family.control_demos:
            assert model_id in shipped, f"configs/models.toml lacks the {family.label} demo ControlNet {model_id!r}"
            assert (shipped[model_id].family, shipped[model_id].base_family) == ("controlnet", family.name)


def test_flow_families_offer_the_flow_samplers_only():
    flux = FAMILIES["flux1"]
    assert family_samplers(flux.scheduling)[0] == "euler" and "ddim" not in family_samplers(flux.scheduling)
    assert family_schedule_error("flow", "ddim", "normal") == (
        "unsupported_sampler", "sampler",
        "Sampler 'ddim' does not apply to flow-matching models; choose one of euler, dpmpp_2m, uni_pc_bh2, deis, lcm.")
    assert family_schedule_error("flow", "euler", "align_your_steps")[0] == "unsupported_schedule"
    assert family_schedule_error("discrete", "ddim", "karras")[0] == "unsupported_schedule"
    assert "align_your_steps" in family_schedules("discrete") and "align_your_steps" not in family_schedules("flow")


def test_a_catalogue_entry_takes_its_familys_defaults_and_keeps_its_own():
    from configs import ModelEntry

    flux, sd15 = FAMILIES.catalogue((ModelEntry(id="f", family="flux1", source="folder:f", steps=20),
                                     ModelEntry(id="s", family="sd15", source="demo")))
    assert (flux.width, flux.height, flux.steps, flux.cfg_scale, flux.sampler) == (1024, 1024, 20, 3.5, "euler")
    assert (sd15.width, sd15.steps, sd15.cfg_scale) == (512, 20, 7.0)


def test_a_family_declared_in_one_place_is_checked_by_the_catalogue_and_the_compiler():
    """A toy family, declared only here and added to a registry: its defaults fill its entry, its size rule,
    samplers and tasks are the compiler's."""
    from configs import CreditPrices, Limits, ModelEntry
    from pipelines import Compiler, InvalidRequest, Txt2Img, WorkflowSpec
    from pipelines.facts import InputFacts
    from pipelines.family import Defaults, Family
    from pipelines.spec import Edit, LoadImage, Link, Node

    toy = Family(name="toy", label="Toy", media="image", denoiser="transformer", scheduling="flow",
                 tasks={"txt2img": "FluxPipeline"}, size_multiple=64, negative_prompt=False, guidance="distilled",
                 defaults=Defaults(width=128, height=192, steps=3, cfg_scale=2.0, sampler="euler", schedule="simple"),
                 demos={"demo-toy": "pipelines.demos.flux1:build_flux1"})
    families = FAMILIES.with_families(toy)
    compiler = Compiler((ModelEntry(id="demo-toy", family="toy", source="demo"),), (), Limits(), CreditPrices(),
                        lambda entry: "sha256:" + "0" * 64, families=families)
    step = compiler.compile(WorkflowSpec.single(Txt2Img(prompt="a fox", seed=1))).steps[0]
    assert (step.width, step.height, step.steps, step.cfg_scale, step.schedule) == (128, 192, 3, 2.0, "simple")

    def refused(node) -> dict:
        with pytest.raises(InvalidRequest) as raised:
            compiler.compile(node if isinstance(node, WorkflowSpec) else WorkflowSpec.single(node))
        return {p.code: p.message for p in raised.value.problems}

    assert refused(Txt2Img(prompt="a fox", width=96))["not_multiple_of_64"] == \
        "width must be a multiple of 64 for Toy models, got 96; try 64."
    assert "no_negative_prompt" in refused(Txt2Img(prompt="a fox", negative_prompt="blur"))
    assert "unsupported_sampler" in refused(Txt2Img(prompt="a fox", sampler="ddim"))
    edit = WorkflowSpec(nodes=(Node("i", LoadImage(artifact_id="a" * 64)),
                               Node("e", Edit(prompt="make it blue", model="demo-toy"), (("image", Link("i", "image")),))))
    with pytest.raises(InvalidRequest, match="Toy models have no edit pipeline"):
        compiler.compile(edit, describe=lambda artifact_id, use: InputFacts(width=64, height=64))
