"""Every sampler and schedule the flow-matching families offer runs on each family's demo model and draws a
picture (issue 13, item 2): what `pipelines.samplers` lets through was measured this way, and a pair that breaks
after an upgrade fails here. Pairs the table refuses are the ones that gave NaN images or errors."""
import numpy as np
import pytest
import torch

from configs import CreditPrices, Limits, load_models
from pipelines import Compiler, Txt2Img, WorkflowSpec
from pipelines.families import FAMILIES
from pipelines.model_hashes import ModelHasher
from pipelines.samplers import FLOW_SCHEDULES, family_samplers, family_schedule_error

FLOW_MODELS = ("demo-flux1", "demo-sd35", "demo-qwen-image", "demo-z-image", "demo-flux2-klein")


@pytest.fixture(scope="module")
def engine(settings, one_torch_thread):
    from pipelines.backend import DiffusersBackend
    from pipelines.model_cache import ModelCache

    compiler = Compiler(load_models(settings.catalogue), (), Limits(), CreditPrices(),
                        ModelHasher(settings.models_dir))
    backend = DiffusersBackend(ModelCache(settings.models_dir, torch.device("cpu"), torch.float32, capacity=1))
    return compiler, backend


def pairs(model_id: str) -> list[tuple[str, str]]:
    family = FAMILIES[model_id.removeprefix("demo-").replace("flux2-klein", "flux2")]
    return [(sampler, schedule) for sampler in family_samplers(family.scheduling, family.samplers)
            for schedule in FLOW_SCHEDULES
            if family_schedule_error(family.scheduling, sampler, schedule, family.samplers) is None]


@pytest.mark.parametrize("model_id", FLOW_MODELS)
def test_every_offered_pair_draws_a_picture(engine, model_id):
    compiler, backend = engine
    offered = pairs(model_id)
    assert ("euler", "normal") in offered and ("euler", "karras") in offered
    drawn = {}
    for sampler, schedule in offered:
        plan = compiler.compile(WorkflowSpec.single(Txt2Img(prompt="a lighthouse", model=model_id, seed=1, steps=3,
                                                            sampler=sampler, schedule=schedule)))
        image = np.asarray(backend.txt2img(plan.steps[0], lambda i, n: None)[0]).astype(float)
        drawn[sampler, schedule] = image.std()
    assert all(spread > 5 for spread in drawn.values()), {pair: s for pair, s in drawn.items() if s <= 5}


def test_the_pairs_that_broke_are_refused_with_the_ones_that_work():
    assert family_schedule_error("flow", "dpmpp_2m", "karras") == (
        "unsupported_schedule", "schedule",
        "Sampler 'dpmpp_2m' does not support the 'karras' schedule; use 'normal', or the sampler 'euler'.")
    assert family_schedule_error("flow", "uni_pc_bh2", "normal", FAMILIES["z-image"].samplers)[0] == \
        "unsupported_sampler"
