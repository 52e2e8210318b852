"""What differed between the environment a file was made in and the one its replay ran in, said for people.

Every recipe stores `environment`: the facts, besides the plan, that decide the output bytes
(`DiffusersBackend.environment()`: library versions, device, dtype, torch threads, the CPU and the
capability torch dispatches to, oneDNN on or off, the PNG zlib, ffmpeg, and on CUDA the GPU, CUDA and
cuDNN). A replay records its own, and `differences` and `verdict` compare the two for the Gallery and
the API (issue 18, item 4: a worker with one torch thread instead of two changed the bytes, and the
verdict blamed "another device or library version").

A key that only one side recorded (a recipe older than the key) is not a difference: nothing says
its value differed, so `differences` skips it rather than claim "torch threads: not recorded → 1".
When the bytes differ, `verdict` names such keys as not recorded, since the cause may be among them;
it leaves out the GPU keys of a side that did not run on CUDA (they do not apply there). Pure: the
standard library only, no torch.
"""
from __future__ import annotations

import json

# Known keys, in the order differences are listed, with their labels; other keys are listed after
# these, by key name, sorted.
LABELS = {
    "device": "device",
    "gpu": "GPU",
    "cpu": "CPU",
    "dtype": "dtype",
    "torch": "torch",
    "cuda": "CUDA",
    "cudnn": "cuDNN",
    "torch_threads": "torch threads",
    "cpu_capability": "CPU capability",
    "mkldnn": "oneDNN",
    "diffusers": "diffusers",
    "transformers": "transformers",
    "pillow": "Pillow",
    "png_zlib": "PNG zlib",
    "ffmpeg": "ffmpeg",
    "python": "Python",
}


def _label(key: str) -> str:
    return LABELS.get(key, key)


def _show(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _keys(original: dict, replayed: dict) -> list[str]:
    known = [key for key in LABELS if key in original or key in replayed]
    return known + sorted((original.keys() | replayed.keys()) - LABELS.keys())


def differences(original: dict, replayed: dict) -> list[str]:
    """Each recorded fact that differs, as "label: original → replayed" (e.g. "torch threads: 2 → 1").

    Args:
        original: the environment stored in the original file's recipe ({} or None if it has none).
        replayed: the environment the replay recorded.

    Returns:
        One fragment per key that both sides recorded with different values: known keys first, in the
        order of LABELS and by their labels, then the others by key name. Keys recorded on one side only
        are skipped (see the module docstring); `verdict` mentions them.
    """
    original, replayed = original or {}, replayed or {}
    return [f"{_label(key)}: {_show(original[key])} → {_show(replayed[key])}"
            for key in _keys(original, replayed)
            if key in original and key in replayed and original[key] != replayed[key]]


# Keys recorded only on one device type: a side on another device has nothing to record.
DEVICE_KEYS = {"gpu": "cuda", "cuda": "cuda", "cudnn": "cuda"}


def _unrecorded(env: dict, other: dict) -> list[str]:
    """Labels of the keys `other` recorded and `env` did not, though it could have."""
    return [_label(key) for key in _keys(env, other) if key in other and key not in env
            and DEVICE_KEYS.get(key, env.get("device")) == env.get("device")]


def _listed(items: list[str]) -> str:
    return "; ".join(items)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def verdict(identical: bool, original_env: dict, replayed_env: dict) -> str:
    """A one-paragraph Markdown verdict on a replay, for the Gallery and the API.

    Args:
        identical: whether the replay made the same bytes as the original.
        original_env: the environment in the original's recipe ({} or None if it has none).
        replayed_env: the environment the replay recorded.

    Returns:
        "**Identical:** ..." or "**Different:** ...", naming every recorded difference of the
        environment (e.g. "The environment differed: torch threads: 2 → 1."). When the bytes differ it
        also names the facts one side did not record, and, if nothing recorded differed, says what else
        can change the bytes and what to try.
    """
    original_env, replayed_env = original_env or {}, replayed_env or {}
    found = differences(original_env, replayed_env)
    if identical:
        return ("**Identical:** the replay made the same bytes" +
                (f", although the environment differed ({_listed(found)})." if found else "."))
    if not original_env:
        return ("**Different:** the replay made other bytes. The original's recipe records no environment, so "
                "what changed cannot be told.")
    notes = [f" The {side} did not record {_and(keys)}, so a difference there is not ruled out."
             for side, keys in (("original", _unrecorded(original_env, replayed_env)),
                                ("replay", _unrecorded(replayed_env, original_env))) if keys]
    if found:
        return ("**Different:** the replay made other bytes. The environment differed: "
                f"{_listed(found)}." + "".join(notes))
    if notes:
        return ("**Different:** the replay made other bytes, though every fact of the environment that both "
                "recorded was the same." + "".join(notes))
    return ("**Different:** the replay made other bytes although the recorded environment was the same. "
            "Something not recorded changed the computation: another model of GPU or another build of a "
            "library under the same version, a process setting, or an operation that is not deterministic. "
            "Replay it again: if two replays on one worker differ from each other, the run itself is not "
            "deterministic there; if they agree, the original worker computed differently.")
