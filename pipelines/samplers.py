"""Maps AUTOMATIC1111/ComfyUI sampler and schedule names to diffusers schedulers, in one table.

A sampler picks the diffusers scheduler class; a schedule picks how its steps are spaced. The
tables and `schedule_error` are pure data (no torch), so the spec compiler can validate a pair up
front; only `make_scheduler` imports diffusers, lazily.

Which class supports what was measured with diffusers 0.42.1 by running every pair on a tiny
pipeline (see tests/test_samplers.py), not read off the docs.
"""

import inspect
import math
from dataclasses import dataclass, replace

from pipelines.families import FAMILIES

Kwargs = tuple[tuple[str, object], ...]


@dataclass(frozen=True)
class Sampler:
    """One A1111/ComfyUI sampler.

    Args:
        name (`str`): ComfyUI name, e.g. `"dpmpp_2m"`.
        a1111 (`str`): A1111 label, e.g. `"DPM++ 2M"`.
        scheduler_class (`str`): diffusers class name, e.g. `"DPMSolverMultistepScheduler"`.
        kwargs (`Kwargs`): extra `from_config` kwargs that select the algorithm.
        sigma_schedules (`bool`): supports the karras and exponential schedules.
        custom_timesteps (`bool`): accepts `set_timesteps(timesteps=[...])` (Align Your Steps).
        batch_consistent (`bool`): image k of a batch run with one generator per image matches the
            single run with that generator. False for `dpmpp_sde`, whose Brownian noise is seeded once
            per call.
    """

    name: str
    a1111: str
    scheduler_class: str
    kwargs: Kwargs = ()
    sigma_schedules: bool = True
    custom_timesteps: bool = False
    batch_consistent: bool = True


@dataclass(frozen=True)
class Schedule:
    """One A1111/ComfyUI schedule (the spacing of the steps).

    Args:
        name (`str`): ComfyUI name, e.g. `"karras"`.
        a1111 (`str`): A1111 label, e.g. `"Karras"`.
        kwargs (`Kwargs`): `from_config` kwargs that select the spacing.
        needs_sigmas (`bool`): needs a sampler with `sigma_schedules`.
        needs_custom_timesteps (`bool`): needs a sampler with `custom_timesteps`.
    """

    name: str
    a1111: str
    kwargs: Kwargs = ()
    needs_sigmas: bool = False
    needs_custom_timesteps: bool = False


# DDIM and DDPM default to clip_sample=True, which clamps the predicted x0 to [-1, 1]; that is
# right for pixels but wrong for SD latents, and SD's own scheduler config sets it False.
_NO_CLIP = (("clip_sample", False),)

SAMPLERS: dict[str, Sampler] = {
    s.name: s
    for s in (
        Sampler("euler", "Euler", "EulerDiscreteScheduler", custom_timesteps=True),
        Sampler("euler_ancestral", "Euler a", "EulerAncestralDiscreteScheduler", sigma_schedules=False),
        Sampler("heun", "Heun", "HeunDiscreteScheduler", custom_timesteps=True),
        Sampler("dpm_2", "DPM2", "KDPM2DiscreteScheduler"),
        Sampler("dpm_2_ancestral", "DPM2 a", "KDPM2AncestralDiscreteScheduler"),
        Sampler("lms", "LMS", "LMSDiscreteScheduler"),
        Sampler(
            "dpmpp_2m", "DPM++ 2M", "DPMSolverMultistepScheduler",
            (("algorithm_type", "dpmsolver++"), ("solver_order", 2)), custom_timesteps=True,
        ),
        Sampler(
            "dpmpp_2m_sde", "DPM++ 2M SDE", "DPMSolverMultistepScheduler",
            (("algorithm_type", "sde-dpmsolver++"), ("solver_order", 2)), custom_timesteps=True,
        ),
        Sampler(
            "dpmpp_3m_sde", "DPM++ 3M SDE", "DPMSolverMultistepScheduler",
            (("algorithm_type", "sde-dpmsolver++"), ("solver_order", 3)), custom_timesteps=True,
        ),
        Sampler("dpmpp_sde", "DPM++ SDE", "DPMSolverSDEScheduler", batch_consistent=False),
        Sampler(
            "ddim", "DDIM", "DDIMScheduler", _NO_CLIP + (("set_alpha_to_one", False),),
            sigma_schedules=False,
        ),
        Sampler("ddpm", "DDPM", "DDPMScheduler", _NO_CLIP, sigma_schedules=False, custom_timesteps=True),
        # diffusers' UniPC defaults to bh2; ComfyUI's plain "uni_pc" is the bh1 variant. In diffusers
        # 0.42.1 bh1's last step down to sigma 0 takes an infinite log-SNR step (B(h) = h, where
        # bh2 has the finite expm1(-h)) and every latent becomes NaN, so bh1 stops at the smallest
        # training sigma (about 0.03) instead.
        Sampler(
            "uni_pc", "UniPC", "UniPCMultistepScheduler",
            (("solver_type", "bh1"), ("final_sigmas_type", "sigma_min")),
        ),
        Sampler("uni_pc_bh2", "UniPC BH2", "UniPCMultistepScheduler", (("solver_type", "bh2"),)),
        Sampler("deis", "DEIS", "DEISMultistepScheduler"),
        Sampler("lcm", "LCM", "LCMScheduler", sigma_schedules=False, custom_timesteps=True),
    )
}
SAMPLERS["euler_a"] = replace(SAMPLERS["euler_ancestral"], name="euler_a")

SCHEDULES: dict[str, Schedule] = {
    s.name: s
    for s in (
        # SD's own config says "leading", which starts Euler at t=901 instead of 999: A1111's
        # "Normal" and the sigma schedules span the whole range, hence "linspace".
        Schedule("normal", "Normal", (("timestep_spacing", "linspace"),)),
        Schedule(
            "karras", "Karras", (("use_karras_sigmas", True), ("timestep_spacing", "linspace")),
            needs_sigmas=True,
        ),
        Schedule(
            "exponential", "Exponential",
            (("use_exponential_sigmas", True), ("timestep_spacing", "linspace")), needs_sigmas=True,
        ),
        Schedule("simple", "Simple", (("timestep_spacing", "trailing"),)),
        Schedule("sgm_uniform", "SGM Uniform", (("timestep_spacing", "trailing"),)),
        Schedule("ddim_uniform", "DDIM", (("timestep_spacing", "leading"), ("steps_offset", 1))),
        Schedule("align_your_steps", "Align Your Steps", needs_custom_timesteps=True),
    )
}

# Flow matching (FLUX, SD3.5, Qwen-Image, Z-Image, Wan, LTX-2): the samplers that apply, as ComfyUI names
# them. Each starts from the model's FlowMatchEuler config; the multistep solvers read it through their
# flow-sigma mode (flow_shift is the model's shift, and use_dynamic_shifting is kept, so the pipelines' `mu`
# still shifts by resolution). Measured on the demo FLUX.1, SD3.5, Z-Image and FLUX.2 models with diffusers
# 0.42.1 (tests/test_flow_samplers.py): the multistep solvers give NaN images with Karras, exponential or beta
# sigmas, so only Euler spaces sigmas another way; pipelines that pass their own sigmas (Qwen-Image, Z-Image)
# run Euler and LCM only, which their family declares.
_FLOW = (("use_flow_sigmas", True), ("prediction_type", "flow_prediction"))
FLOW_SAMPLERS: dict[str, Sampler] = {
    s.name: s
    for s in (
        Sampler("euler", "Euler", "FlowMatchEulerDiscreteScheduler"),
        Sampler("dpmpp_2m", "DPM++ 2M", "DPMSolverMultistepScheduler",
                _FLOW + (("algorithm_type", "dpmsolver++"), ("solver_order", 2)), sigma_schedules=False),
        Sampler("uni_pc_bh2", "UniPC BH2", "UniPCMultistepScheduler", _FLOW + (("solver_type", "bh2"),),
                sigma_schedules=False),
        Sampler("deis", "DEIS", "DEISMultistepScheduler", _FLOW, sigma_schedules=False),
        Sampler("lcm", "LCM", "FlowMatchLCMScheduler", sigma_schedules=False),
    )
}
# The schedules a flow sampler takes: the model's own shifted spacing, or sigmas spaced another way.
FLOW_SCHEDULES = ("normal", "simple", "karras", "exponential", "beta")
_FLOW_SCHEDULE_LABELS = {"beta": "Beta"}           # the others are named as the discrete ones are
_FLOW_SCHEDULE_KWARGS = {"karras": (("use_karras_sigmas", True),), "exponential": (("use_exponential_sigmas", True),),
                         "beta": (("use_beta_sigmas", True),)}

# LCMScheduler accepts timestep_spacing but never reads it: its steps always come from the
# distillation schedule. Only "normal" (its own spacing) and custom timesteps are honest there.
_OWN_SPACING = frozenset({"LCMScheduler"})

# Suggested replacements, in order of preference, when a pair is rejected.
_PREFERRED = ("dpmpp_2m", "euler", "uni_pc", "ddim")

# Every key this module sets, plus the sigma switches a model's own config may turn on. Each starts
# from the class default in make_scheduler: callers pass `pipe.scheduler.config`, which is whatever
# scheduler the previous job left there, and its solver_order=3 or use_karras_sigmas=True must not
# leak into this job. The other keys (betas, prediction_type, ...) describe the model and are kept.
_RESET_KEYS = frozenset(
    ["use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "noise_sampler_seed"]
    + [k for entry in (*SAMPLERS.values(), *SCHEDULES.values()) for k, _ in entry.kwargs]
)

# Align Your Steps timesteps per model family, keys into diffusers.schedulers.AysSchedules.
_AYS_KEYS = {"sd15": "StableDiffusionTimesteps", "sdxl": "StableDiffusionXLTimesteps"}


def _unknown_error(sampler: str, schedule: str) -> str | None:
    if sampler not in SAMPLERS:
        return f"Unknown sampler {sampler!r}; valid samplers are: {', '.join(sorted(SAMPLERS))}."
    if schedule not in SCHEDULES:
        return f"Unknown schedule {schedule!r}; valid schedules are: {', '.join(SCHEDULES)}."
    return None


def _supports(s: Sampler, sch: Schedule) -> bool:
    if sch.needs_sigmas and not s.sigma_schedules:
        return False
    if sch.needs_custom_timesteps and not s.custom_timesteps:
        return False
    if s.scheduler_class in _OWN_SPACING and sch.name not in ("normal", "align_your_steps"):
        return False
    return True


def schedule_error(sampler: str, schedule: str) -> str | None:
    """Check a sampler/schedule pair without importing torch.

    Args:
        sampler (`str`): ComfyUI sampler name, a key of `SAMPLERS`.
        schedule (`str`): ComfyUI schedule name, a key of `SCHEDULES`.

    Returns:
        `None` if the pair works, else one sentence a person can act on.
    """
    unknown = _unknown_error(sampler, schedule)
    if unknown:
        return unknown
    s, sch = SAMPLERS[sampler], SCHEDULES[schedule]
    if _supports(s, sch):
        return None
    others = [n for n in _PREFERRED if _supports(SAMPLERS[n], sch)][:2]
    return (
        f"Sampler {sampler!r} does not support the {schedule!r} schedule; use 'normal', "
        f"or a sampler such as {' or '.join(repr(n) for n in others)}."
    )


def family_samplers(scheduling: str, only: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The samplers that apply to models scheduled as `scheduling` ("discrete", "flow" or "edm"); `only`: the
    ones a family's pipelines run, where that is fewer."""
    every = tuple(FLOW_SAMPLERS) if scheduling == "flow" else tuple(SAMPLERS)
    return tuple(s for s in every if s in only) if only else every


def family_schedules(scheduling: str) -> tuple[str, ...]:
    """The schedules that apply to models scheduled as `scheduling`."""
    return FLOW_SCHEDULES if scheduling == "flow" else tuple(SCHEDULES)


def family_schedule_error(scheduling: str, sampler: str, schedule: str,
                          only: tuple[str, ...] = ()) -> tuple[str, str, str] | None:
    """Check a sampler/schedule pair for models scheduled as `scheduling` (of a family whose pipelines run
    `only` those samplers, if given), without importing torch.

    Returns:
        `None` if the pair works, else `(code, parameter, message)`: the message is one sentence a person
        can act on, naming the alternatives.
    """
    if scheduling != "flow":
        if sampler not in SAMPLERS:
            return "unknown_sampler", "sampler", f"Unknown sampler {sampler!r}; choose one of {sorted(SAMPLERS)}."
        if schedule not in SCHEDULES:
            return "unknown_schedule", "schedule", f"Unknown schedule {schedule!r}; choose one of {sorted(SCHEDULES)}."
        message = schedule_error(sampler, schedule)
        return None if message is None else ("unsupported_schedule", "schedule", message)
    applies = family_samplers("flow", only)
    if sampler not in applies:
        code = "unsupported_sampler" if sampler in SAMPLERS else "unknown_sampler"
        known = ("is not a sampler" if code == "unknown_sampler" else "does not apply to flow-matching models"
                 if sampler not in FLOW_SAMPLERS else "does not run on this model's pipeline")
        return code, "sampler", f"Sampler {sampler!r} {known}; choose one of {', '.join(applies)}."
    if schedule not in FLOW_SCHEDULES:
        code = "unsupported_schedule" if schedule in SCHEDULES else "unknown_schedule"
        return code, "schedule", (f"Schedule {schedule!r} does not apply to flow-matching models; choose one of "
                                  f"{', '.join(FLOW_SCHEDULES)}.")
    if schedule in _FLOW_SCHEDULE_KWARGS and not FLOW_SAMPLERS[sampler].sigma_schedules:
        return "unsupported_schedule", "schedule", (f"Sampler {sampler!r} does not support the {schedule!r} schedule; "
                                                    "use 'normal', or the sampler 'euler'.")
    return None


def a1111_labels(sampler: str, schedule: str) -> tuple[str, str]:
    """Return the A1111 labels of a pair, e.g. `("DPM++ 2M", "Karras")`. Raises `ValueError` on unknown names."""
    if schedule in _FLOW_SCHEDULE_LABELS and sampler in FLOW_SAMPLERS:
        return FLOW_SAMPLERS[sampler].a1111, _FLOW_SCHEDULE_LABELS[schedule]
    unknown = _unknown_error(sampler, schedule)
    if unknown:
        raise ValueError(unknown)
    return SAMPLERS[sampler].a1111, SCHEDULES[schedule].a1111


# A1111 labels back to the names the tables use ("DPM++ 2M" -> "dpmpp_2m"); "euler_a" is only an alias.
_A1111_SAMPLERS = {s.a1111.lower(): s.name for s in (*SAMPLERS.values(), *FLOW_SAMPLERS.values()) if s.name != "euler_a"}
_A1111_SCHEDULES = {**{s.a1111.lower(): s.name for s in SCHEDULES.values()}, "beta": "beta"}
# A1111's schedule "Automatic" means the sampler's own default: here, the model's.
_AUTOMATIC = "automatic"


def accepted_names(sampler: str, schedule: str = "") -> tuple[str, str]:
    """The tables' names for a sampler and schedule as a person or a client may write them: ComfyUI's names
    ("dpmpp_2m", "karras") as they are, A1111's labels in any case ("DPM++ 2M", "Karras"), and A1111's older
    combined label ("DPM++ 2M Karras", from before it had a "Schedule type"), which names both. A schedule of
    "Automatic" (A1111's default) becomes "" (the model's). A name neither knows is returned unchanged, so the
    check that follows names it in its message. Every place that takes a sampler reads it through here."""
    sampler, schedule = sampler.strip(), schedule.strip()
    if schedule.lower() == _AUTOMATIC:
        schedule = ""
    name = sampler if sampler in SAMPLERS or sampler in FLOW_SAMPLERS else _A1111_SAMPLERS.get(sampler.lower())
    if name is None and sampler:
        for label, schedule_name in _A1111_SCHEDULES.items():
            base = _A1111_SAMPLERS.get(sampler[:-len(label) - 1].lower()) if sampler.lower().endswith(" " + label) else None
            if base is not None:
                return base, schedule or schedule_name
    chosen = schedule if schedule in SCHEDULES or schedule in FLOW_SCHEDULES else _A1111_SCHEDULES.get(schedule.lower())
    return name or sampler, chosen or schedule


def _loglinear(values: list[int], n: int) -> list[float]:
    """Resample a decreasing positive list to n points, linearly in log space.

    Same as `loglinear_interp` in ComfyUI's comfy_extras/nodes_align_your_steps.py (and A1111).
    """
    if n == 1:
        return [float(values[0])]
    logs = [math.log(v) for v in values]
    last = len(values) - 1
    out = []
    for i in range(n):
        x = i * last / (n - 1)
        j = min(int(x), last - 1)
        out.append(math.exp(logs[j] + (x - j) * (logs[j + 1] - logs[j])))
    return out


def _ays_timesteps(family: str, steps: int) -> list[int]:
    """Align Your Steps timesteps (https://arxiv.org/abs/2404.14507) for `steps` steps."""
    from diffusers.schedulers import AysSchedules

    if family not in _AYS_KEYS:
        raise ValueError(
            f"The 'align_your_steps' schedule has no table for model family {family!r}; "
            f"it exists for {', '.join(_AYS_KEYS)}. Use another schedule."
        )
    base = list(AysSchedules[_AYS_KEYS[family]])
    if steps == len(base):
        return base
    timesteps = [round(t) for t in _loglinear(base, steps)]
    # Rounding can merge neighbours at high step counts; schedulers need strictly decreasing steps.
    for i in range(1, len(timesteps)):
        timesteps[i] = min(timesteps[i], timesteps[i - 1] - 1)
    if timesteps[-1] < 0:
        raise ValueError(f"The 'align_your_steps' schedule cannot make {steps} distinct timesteps.")
    return timesteps


def make_scheduler(base_config: dict, sampler: str, schedule: str, steps: int, family: str, seed: int):
    """Build the diffusers scheduler for a sampler and schedule.

    Args:
        base_config (`dict`): the model's scheduler config (`pipe.scheduler.config`); it carries the
            betas and prediction type, which every sampler keeps.
        sampler (`str`): ComfyUI sampler name, a key of `SAMPLERS`.
        schedule (`str`): ComfyUI schedule name, a key of `SCHEDULES`.
        steps (`int`): number of inference steps; used for Align Your Steps.
        family (`str`): model family (`pipelines.families`): its scheduling picks the discrete or the flow-matching
            samplers, and for SD1.5 and SDXL the Align Your Steps table.
        seed (`int`): seeds the Brownian noise of `dpmpp_sde`, which ignores the pipeline's generator.

    Returns:
        `(scheduler, call_kwargs)`: the scheduler, and extra pipeline call arguments
        (`{"timesteps": [...]}` for `align_your_steps`, else `{}`).

    Raises:
        `ValueError`: the pair is invalid, or the class lacks a kwarg. `from_config` silently drops
        kwargs it does not know (Euler a would quietly run without Karras), so this checks first.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}.")
    declared = FAMILIES.get(family)
    if declared is not None and declared.scheduling == "flow":
        return _flow_scheduler(base_config, sampler, schedule), {}
    error = schedule_error(sampler, schedule)
    if error:
        raise ValueError(error)

    import diffusers

    s, sch = SAMPLERS[sampler], SCHEDULES[schedule]
    cls = getattr(diffusers, s.scheduler_class)
    params = inspect.signature(cls.__init__).parameters

    # 1. Class defaults for the keys we manage, then the sampler's algorithm, then the spacing.
    kwargs = {k: params[k].default for k in _RESET_KEYS if k in params}
    kwargs.update(s.kwargs)
    kwargs.update(sch.kwargs)
    if "noise_sampler_seed" in params:
        kwargs["noise_sampler_seed"] = seed

    # 2. Classes without the knob already space linearly; any other spacing must be honoured.
    if "timestep_spacing" not in params and kwargs.get("timestep_spacing") == "linspace":
        del kwargs["timestep_spacing"]

    # 3. Fail loudly where from_config would silently ignore a kwarg.
    unsupported = sorted(k for k in kwargs if k not in params)
    if unsupported:
        raise ValueError(
            f"{s.scheduler_class} does not accept {', '.join(unsupported)}, needed for sampler "
            f"{sampler!r} with schedule {schedule!r}."
        )

    scheduler = cls.from_config(base_config, **kwargs)
    call_kwargs = {"timesteps": _ays_timesteps(family, steps)} if sch.needs_custom_timesteps else {}
    return scheduler, call_kwargs


def _flow_scheduler(base_config: dict, sampler: str, schedule: str):
    """The flow-matching scheduler for a sampler and schedule, from a flow model's scheduler config (which
    keeps the keys of every class it has been, so the model's shift survives a swap and back)."""
    problem = family_schedule_error("flow", sampler, schedule)
    if problem:
        raise ValueError(problem[2])
    import diffusers

    s = FLOW_SAMPLERS[sampler]
    cls = getattr(diffusers, s.scheduler_class)
    params = inspect.signature(cls.__init__).parameters
    kwargs = {k: params[k].default for k in ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")
              if k in params}
    kwargs.update(s.kwargs)
    kwargs.update(_FLOW_SCHEDULE_KWARGS.get(schedule, ()))
    if "flow_shift" in params:
        kwargs["flow_shift"] = base_config.get("shift", base_config.get("flow_shift", 1.0))
    unsupported = sorted(k for k in kwargs if k not in params)
    if unsupported:
        raise ValueError(f"{s.scheduler_class} does not accept {', '.join(unsupported)}, needed for sampler "
                         f"{sampler!r} with schedule {schedule!r}.")
    return cls.from_config(base_config, **kwargs)
