"""Every sampler and schedule the flow-matching families offer runs on each family's demo model and draws (issue
13, item 2): what `pipelines.samplers` and the families' `samplers` let through was measured this way, and a pair
that breaks after an upgrade fails here. Pairs the tables refuse are the ones that gave NaN images or errors."""
import numpy as np
import pytest
import torch

from configs import CreditPrices, Limits, load_models
from pipelines import Compiler, Txt2Img, WorkflowSpec
from pipelines.spec import Txt2Vid
from pipelines.families import FAMILIES
from pipelines.model_hashes import ModelHasher
from pipelines.samplers import FLOW_SCHEDULES, family_samplers, family_schedule_error

IMAGE_MODELS = ("demo-flux1", "demo-sd35", "demo-qwen-image", "demo-z-image", "demo-flux2-klein", "demo-flux2-dev")
VIDEO_MODELS = ("demo-wan22", "demo-ltx2")


@pytest.fixture(scope="module")
def engine(settings, one_torch_thread):
    from pipelines.backend import DiffusersBackend
    from pipelines.model_cache import ModelCache
    from pipelines.turns import DeviceTurns
    from pipelines.video_backend import VideoBackend

    compiler = Compiler(load_models(settings.catalogue), (), Limits(), CreditPrices(),
                        ModelHasher(settings.models_dir))
    cache = ModelCache(settings.models_dir, torch.device("cpu"), torch.float32, capacity=1)
    return compiler, DiffusersBackend(cache), VideoBackend(cache, DeviceTurns())


def offered(compiler, model_id: str) -> list[tuple[str, str]]:
    family = FAMILIES[compiler.models[model_id].family]
    return [(sampler, schedule) for sampler in family_samplers(family.scheduling, family.samplers)
            for schedule in FLOW_SCHEDULES
            if family_schedule_error(family.scheduling, sampler, schedule, family.samplers) is None]


def spread(image) -> float:
    return float(np.asarray(image).astype(float).std())


@pytest.mark.parametrize("model_id", IMAGE_MODELS + VIDEO_MODELS)
def test_every_offered_pair_draws(engine, model_id):
    compiler, images, videos = engine
    pairs = offered(compiler, model_id)
    assert ("euler", "normal") in pairs and ("euler", "karras") in pairs
    drawn = {}
    for sampler, schedule in pairs:
        if model_id in VIDEO_MODELS:
            node = Txt2Vid(prompt="a boat", model=model_id, seed=1, steps=3, sampler=sampler, schedule=schedule)
            plan = compiler.compile(WorkflowSpec.single(node))
            drawn[sampler, schedule] = spread(videos.family_video(plan.steps[0], [], lambda *a, **k: None)[0].frames[0])
        else:
            node = Txt2Img(prompt="a lighthouse", model=model_id, seed=1, steps=3, sampler=sampler, schedule=schedule)
            plan = compiler.compile(WorkflowSpec.single(node))
            drawn[sampler, schedule] = spread(images.txt2img(plan.steps[0], lambda *a, **k: None)[0])
    assert all(s > 5 for s in drawn.values()), {pair: s for pair, s in drawn.items() if s <= 5}


def test_the_pairs_that_broke_are_refused_with_the_ones_that_work():
    assert family_schedule_error("flow", "dpmpp_2m", "karras") == (
        "unsupported_schedule", "schedule",
        "Sampler 'dpmpp_2m' does not support the 'karras' schedule; use 'normal', or the sampler 'euler'.")
    assert family_schedule_error("flow", "uni_pc_bh2", "normal", FAMILIES["z-image"].samplers)[0] == \
        "unsupported_sampler"
    assert family_schedule_error("flow", "deis", "normal", FAMILIES["ltx2"].samplers)[0] == "unsupported_sampler"
