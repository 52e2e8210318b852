"""The sampler table against real diffusers: every advertised pair runs, every rejected pair would
fail or be silently wrong, kwargs take effect, and seeds reproduce images."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub

import dataclasses
import inspect

import numpy as np
import pytest
import torch

from pipelines.demo_model import build_sd15
from pipelines.samplers import SAMPLERS, SCHEDULES, a1111_labels, make_scheduler, schedule_error

PAIRS = [(s, sch) for s in SAMPLERS for sch in SCHEDULES]
SUPPORTED = [p for p in PAIRS if schedule_error(*p) is None]
REJECTED = [p for p in PAIRS if schedule_error(*p) is not None]
PROMPT = "a photo of a cat"

# numpy 2 deprecation chatter from diffusers' schedulers, tens of thousands of lines per run.
pytestmark = pytest.mark.usefixtures("one_torch_thread")




def _gen(seed):
    return torch.Generator("cpu").manual_seed(seed)


@pytest.fixture(scope="module")
def pipe():
    return build_sd15()


@pytest.fixture(scope="module")
def base_config(pipe):
    # A copy: the tests swap pipe.scheduler, as the backend does per job.
    return dict(pipe.scheduler.config)


def _generate(pipe, base_config, sampler, schedule, seeds, steps=3, seed=None):
    """Images (float arrays) for one prompt per seed, one generator per image."""
    pipe.scheduler, extra = make_scheduler(
        base_config, sampler, schedule, steps, "sd15", seeds[0] if seed is None else seed
    )
    return pipe(
        [PROMPT] * len(seeds), num_inference_steps=steps, height=64, width=64, output_type="np",
        generator=[_gen(s) for s in seeds], **extra,
    ).images


def _steps(scheduler, extra, steps=4):
    """Set the scheduler's steps; return its timesteps and sigmas as a comparable tuple."""
    if extra:
        scheduler.set_timesteps(timesteps=extra["timesteps"])
    else:
        scheduler.set_timesteps(steps)
    sigmas = getattr(scheduler, "sigmas", None)
    return tuple(scheduler.timesteps.tolist()) + (() if sigmas is None else tuple(sigmas.tolist()))


def _denoise_without_unet(scheduler):
    """Run the scheduler's own loop (after _steps) with a stand-in for the UNet; return the latents."""
    generator = _gen(0)
    latents = torch.randn((1, 4, 8, 8), generator=generator) * scheduler.init_noise_sigma
    takes_generator = "generator" in inspect.signature(scheduler.step).parameters
    for t in scheduler.timesteps:
        noise_pred = 0.5 * scheduler.scale_model_input(latents, t)
        extra = {"generator": generator} if takes_generator else {}
        latents = scheduler.step(noise_pred, t, latents, **extra).prev_sample
    return latents


def test_table_covers_the_required_names():
    required = {"euler", "euler_ancestral", "euler_a", "heun", "dpm_2", "dpm_2_ancestral", "lms", "dpmpp_2m",
                "dpmpp_2m_sde", "dpmpp_3m_sde", "dpmpp_sde", "ddim", "ddpm", "uni_pc", "uni_pc_bh2", "deis", "lcm"}
    assert required <= set(SAMPLERS)
    assert all(SAMPLERS[name].name == name for name in SAMPLERS)
    assert SAMPLERS["euler_a"] == dataclasses.replace(SAMPLERS["euler_ancestral"], name="euler_a")
    assert set(SCHEDULES) == {"normal", "karras", "exponential", "simple", "sgm_uniform", "ddim_uniform",
                              "align_your_steps"}


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_supported_schedule_applies_and_denoises(base_config, sampler):
    # Scheduler level, every pair: kwargs land in the config, the loop stays finite, and each
    # schedule gives different steps (a kwarg accepted but ignored, like LCM's timestep_spacing,
    # would give the same ones).
    results = {}
    for schedule in SCHEDULES:
        if schedule_error(sampler, schedule) is not None:
            continue
        scheduler, extra = make_scheduler(base_config, sampler, schedule, 4, "sd15", 0)
        assert type(scheduler).__name__ == SAMPLERS[sampler].scheduler_class
        for key, value in SAMPLERS[sampler].kwargs + SCHEDULES[schedule].kwargs:
            assert scheduler.config[key] == value, (schedule, key)
        steps = _steps(scheduler, extra)
        assert torch.isfinite(_denoise_without_unet(scheduler)).all(), schedule
        if schedule != "sgm_uniform":  # the same spacing as "simple" by design
            results[schedule] = steps
    assert len(set(results.values())) == len(results), results


# Pipeline level: every sampler with "normal", every other schedule with a few samplers.
PIPELINE_PAIRS = [(s, "normal") for s in SAMPLERS] + [
    (s, sch) for sch in SCHEDULES if sch != "normal" for s in ("euler", "dpmpp_2m_sde", "uni_pc", "lcm")
    if schedule_error(s, sch) is None
]


@pytest.mark.parametrize("sampler,schedule", PIPELINE_PAIRS)
def test_pair_runs_on_the_pipeline(pipe, base_config, sampler, schedule):
    image = _generate(pipe, base_config, sampler, schedule, [0], steps=2)[0]
    assert image.shape == (64, 64, 3) and np.isfinite(image).all()
    assert type(pipe.scheduler).__name__ == SAMPLERS[sampler].scheduler_class


def test_scheduler_ignores_what_the_previous_job_left(base_config):
    # The backend passes pipe.scheduler.config, i.e. whatever the previous job left there. Walk
    # through every sampler with a non-default schedule, then check each sampler from there.
    dirty = base_config
    for sampler in SAMPLERS:
        schedule = "karras" if SAMPLERS[sampler].sigma_schedules else "align_your_steps"
        if schedule_error(sampler, schedule) is not None:
            schedule = "normal"
        dirty = dict(make_scheduler(dirty, sampler, schedule, 4, "sd15", 5)[0].config)
    for sampler in SAMPLERS:
        clean = make_scheduler(base_config, sampler, "normal", 4, "sd15", 0)[0]
        reused = make_scheduler(dirty, sampler, "normal", 4, "sd15", 0)[0]
        # Keys the class does not take ride along in its config unused; compare the ones it reads.
        params = inspect.signature(type(clean).__init__).parameters
        assert {k: v for k, v in reused.config.items() if k in params} == {
            k: v for k, v in clean.config.items() if k in params
        }, sampler


@pytest.mark.parametrize("sampler,schedule", REJECTED)
def test_rejected_pair_fails_or_is_silently_wrong_in_diffusers(pipe, base_config, sampler, schedule):
    import diffusers

    with pytest.raises(ValueError, match="does not support"):
        make_scheduler(base_config, sampler, schedule, 4, "sd15", 0)
    cls = getattr(diffusers, SAMPLERS[sampler].scheduler_class)
    sch = SCHEDULES[schedule]
    if sch.needs_custom_timesteps:
        pipe.scheduler = cls.from_config(base_config)
        with pytest.raises(ValueError, match="custom timestep"):
            pipe(PROMPT, timesteps=[999, 500, 24], height=64, width=64, generator=_gen(0))
    elif sch.needs_sigmas:
        flag = sch.kwargs[0][0]
        assert not cls.from_config(base_config, **dict(sch.kwargs)).config.get(flag, False)  # dropped silently
    else:
        normal = cls.from_config(base_config, **dict(SCHEDULES["normal"].kwargs))
        asked = cls.from_config(base_config, **dict(sch.kwargs))
        assert _steps(asked, {}) == _steps(normal, {})  # the spacing is ignored


def test_error_messages_say_what_to_do():
    assert schedule_error("euler_a", "karras") == (
        "Sampler 'euler_a' does not support the 'karras' schedule; use 'normal', "
        "or a sampler such as 'dpmpp_2m' or 'euler'."
    )
    assert "'align_your_steps'" in schedule_error("ddim", "align_your_steps")
    assert "dpmpp_2m" in schedule_error("nope", "normal") and "euler_a" in schedule_error("nope", "normal")
    assert "karras" in schedule_error("euler", "nope")
    assert schedule_error("dpmpp_2m", "karras") is None


def test_a1111_labels():
    assert a1111_labels("dpmpp_2m", "karras") == ("DPM++ 2M", "Karras")
    assert a1111_labels("euler_a", "normal") == ("Euler a", "Normal")
    assert a1111_labels("euler", "sgm_uniform") == ("Euler", "SGM Uniform")
    with pytest.raises(ValueError, match="Unknown sampler"):
        a1111_labels("nope", "normal")


def test_kwargs_take_effect(base_config):
    s, extra = make_scheduler(base_config, "dpmpp_2m", "karras", 20, "sd15", 0)
    assert s.config.use_karras_sigmas is True and s.config.timestep_spacing == "linspace" and extra == {}
    assert s.config.algorithm_type == "dpmsolver++" and s.config.solver_order == 2
    s, _ = make_scheduler(base_config, "dpmpp_2m_sde", "exponential", 20, "sd15", 0)
    assert s.config.algorithm_type == "sde-dpmsolver++" and s.config.use_exponential_sigmas is True
    s, _ = make_scheduler(base_config, "uni_pc", "normal", 20, "sd15", 0)
    assert s.config.solver_type == "bh1"
    s, _ = make_scheduler(base_config, "dpmpp_sde", "karras", 20, "sd15", 1234)
    assert s.config.noise_sampler_seed == 1234
    s, _ = make_scheduler(base_config, "ddim", "ddim_uniform", 10, "sd15", 0)
    assert s.config.clip_sample is False
    s.set_timesteps(10)
    assert s.timesteps.tolist() == list(range(901, 0, -100))
    # A model config that ships with Karras on still gets the "normal" it asked for.
    s, _ = make_scheduler({**base_config, "use_karras_sigmas": True}, "euler", "normal", 4, "sd15", 0)
    assert s.config.use_karras_sigmas is False
    # Euler with the model's own "leading" spacing would start at t=901; normal must start at 999.
    s.set_timesteps(10)
    assert s.timesteps[0] == 999


def _comfy_loglinear(values, n):
    """ComfyUI's loglinear_interp (comfy_extras/nodes_align_your_steps.py), as a reference."""
    xs = np.linspace(0, 1, len(values))
    ys = np.log(values[::-1])
    return np.exp(np.interp(np.linspace(0, 1, n), xs, ys))[::-1]


@pytest.mark.parametrize("family,key", [("sd15", "StableDiffusionTimesteps"), ("sdxl", "StableDiffusionXLTimesteps")])
@pytest.mark.parametrize("steps", [4, 10, 20])
def test_align_your_steps_timesteps(base_config, family, key, steps):
    from diffusers.schedulers import AysSchedules

    scheduler, extra = make_scheduler(base_config, "euler", "align_your_steps", steps, family, 0)
    ts = extra["timesteps"]
    assert len(ts) == steps and all(type(t) is int for t in ts)
    assert all(a > b for a, b in zip(ts, ts[1:]))
    assert ts == [round(t) for t in _comfy_loglinear(AysSchedules[key], steps)]
    if steps == 10:
        assert ts == AysSchedules[key]
    scheduler.set_timesteps(timesteps=ts)
    assert scheduler.timesteps.round().int().tolist() == ts


def test_align_your_steps_needs_a_known_family(base_config):
    with pytest.raises(ValueError, match="model family"):
        make_scheduler(base_config, "euler", "align_your_steps", 10, "flux", 0)


@pytest.mark.parametrize("sampler", ["euler_a", "dpmpp_2m_sde", "dpmpp_sde", "ddpm"])
def test_same_seed_same_bytes(pipe, base_config, sampler):
    first = _generate(pipe, base_config, sampler, "normal", [42])
    second = _generate(pipe, base_config, sampler, "normal", [42])
    assert np.array_equal(first, second)
    assert not np.array_equal(first, _generate(pipe, base_config, sampler, "normal", [43]))


def test_dpmpp_sde_noise_follows_the_seed_argument(pipe, base_config):
    # DPMSolverSDEScheduler ignores the generator for its Brownian noise; make_scheduler seeds it.
    a = _generate(pipe, base_config, "dpmpp_sde", "karras", [7], seed=1)
    b = _generate(pipe, base_config, "dpmpp_sde", "karras", [7], seed=2)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("sampler", ["euler", "euler_a", "dpmpp_2m_sde"])
def test_batch_matches_single_runs(pipe, base_config, sampler):
    assert SAMPLERS[sampler].batch_consistent
    batch = _generate(pipe, base_config, sampler, "normal", [10, 11])
    single = _generate(pipe, base_config, sampler, "normal", [11])
    # Batched float math may move a pixel by one level; a wrong noise stream moves it by dozens.
    assert np.abs(np.round(batch[1] * 255) - np.round(single[0] * 255)).max() <= 2


def test_dpmpp_sde_is_not_batch_consistent(pipe, base_config):
    assert not SAMPLERS["dpmpp_sde"].batch_consistent
    batch = _generate(pipe, base_config, "dpmpp_sde", "normal", [10, 11], seed=11)
    single = _generate(pipe, base_config, "dpmpp_sde", "normal", [11])
    assert np.abs(np.round(batch[1] * 255) - np.round(single[0] * 255)).max() > 2


def test_samplers_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, pipelines.samplers; print('torch' in sys.modules or 'diffusers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.stdout.strip() == "False"

