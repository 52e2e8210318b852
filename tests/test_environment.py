"""The environment a run records (DiffusersBackend.environment) and the replay verdict that compares two
(pipelines.environment): the torch thread count changes the bytes, is recorded, and is named (issue 18,
item 4). The runs use the demo SD1.5 through the real Runner, 2 steps, 4 seeds."""
import json
import pathlib
import subprocess
import sys

import pytest
import torch

from pipelines.environment import LABELS, differences, verdict

OLD_KEYS = {"torch", "diffusers", "transformers", "pillow", "device", "dtype", "python"}   # before issue 18


@pytest.fixture(scope="module")
def engine(settings):
    """(runner, plan): a Runner on the CPU, as a worker builds it (the session's models), and a 4-image
    txt2img plan on the demo SD1.5."""
    from configs import CreditPrices, Limits, load_models
    from pipelines import Compiler, Txt2Img, WorkflowSpec
    from pipelines.model_hashes import ModelHasher
    from queueing.executor import build_runner

    compiler = Compiler(load_models(settings.catalogue), (), Limits(), CreditPrices(), ModelHasher(settings.models_dir))
    plan = compiler.compile(WorkflowSpec.single(Txt2Img(prompt="a lighthouse at dusk", model="demo-sd15", steps=2,
                                                        seed=1, batch_size=4)))
    return build_runner(settings), plan


@pytest.fixture(scope="module")
def runs(engine):
    """threads -> the Result of the plan run with that many torch threads (the count restored after)."""
    runner, plan = engine
    before = torch.get_num_threads()
    made = {}
    try:
        for threads in (2, 1):
            torch.set_num_threads(threads)
            made[threads] = runner.run(plan)
    finally:
        torch.set_num_threads(before)
    return made


@pytest.fixture(scope="module")
def env(runs) -> dict:
    return runs[2].environment


def pngs(result) -> list[bytes]:
    """The outputs' files, as the worker encodes them (the recipe text is the same on both sides)."""
    from storage.artifacts import encode_png

    return [encode_png(output.image, {"atelier": "{}"}) for output in result.outputs]


# -- what a run records ----------------------------------------------------------------------------

def test_a_run_records_the_thread_count_it_ran_with(runs):
    assert runs[2].environment["torch_threads"] == 2
    assert runs[1].environment["torch_threads"] == 1


def test_the_thread_count_is_torch_get_num_threads_at_run_time(engine):
    runner, plan = engine
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        result = runner.run(plan)
        assert result.environment["torch_threads"] == torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_the_environment_keeps_the_old_keys_and_adds_what_changes_the_bytes(env):
    assert OLD_KEYS <= env.keys()
    assert (env["torch"], env["device"], env["dtype"]) == (torch.__version__, "cpu", "float32")
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["mkldnn"] == ("on" if torch.backends.mkldnn.is_available() else "off")
    assert env["png_zlib"].startswith(("zlib ", "zlib-ng "))
    import platform

    import imageio_ffmpeg
    cpu_names = [line.split(":", 1)[1].strip() for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
    assert env["cpu"] == (cpu_names[0] if cpu_names else platform.processor() or platform.machine())
    assert env["ffmpeg"] == imageio_ffmpeg.get_ffmpeg_version()
    assert not {"gpu", "cuda", "cudnn"} & env.keys()          # CUDA facts only on a CUDA device
    assert set(env) <= set(LABELS)                             # every key has a readable label


def test_the_environment_is_strings_and_ints_that_json_round_trips(env):
    assert all(type(value) in (str, int) for value in env.values()), env
    assert json.loads(json.dumps(env)) == env


# -- the thread count changes the bytes, and the verdict says so ---------------------------------

def test_one_thread_instead_of_two_changes_the_bytes_and_the_verdict_names_it(runs):
    two, one = pngs(runs[2]), pngs(runs[1])
    assert two != one, ("1 and 2 torch threads made the same 4 images here; bench/determinism.py measured "
                        "them to differ on a 2-core AVX2 CPU")
    assert differences(runs[2].environment, runs[1].environment) == ["torch threads: 2 → 1"]
    for before, after in zip(two, one):
        text = verdict(before == after, runs[2].environment, runs[1].environment)
        assert "torch threads: 2 → 1" in text
        assert text.startswith("**Identical:**" if before == after else "**Different:**")
    assert "device or library version" not in verdict(False, runs[2].environment, runs[1].environment)


def test_the_same_threads_make_the_same_bytes(engine, runs):
    runner, plan = engine
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        again = runner.run(plan)
    finally:
        torch.set_num_threads(before)
    assert pngs(again) == pngs(runs[1])
    assert differences(runs[1].environment, again.environment) == []
    assert verdict(True, runs[1].environment, again.environment) == "**Identical:** the replay made the same bytes."


# -- differences ---------------------------------------------------------------------------------

def test_differences_name_each_changed_fact_by_its_label_in_a_fixed_order(env):
    changed = {**env, "python": "3.99.0", "torch": "2.99.0", "device": "cuda", "torch_threads": 16}
    assert differences(env, changed) == ["device: cpu → cuda", f"torch: {env['torch']} → 2.99.0",
                                         "torch threads: 2 → 16", f"Python: {env['python']} → 3.99.0"]


def test_unknown_keys_are_named_by_their_key_after_the_known_ones(env):
    assert differences({**env, "zz_flag": "a", "blas": 1}, {**env, "zz_flag": "b", "blas": 2, "torch": "x"}) == [
        f"torch: {env['torch']} → x", "blas: 1 → 2", "zz_flag: a → b"]


def test_a_key_only_one_side_recorded_is_not_a_difference(env):
    old = {key: env[key] for key in OLD_KEYS}
    assert differences(old, env) == []
    assert differences(env, old) == []
    assert differences({}, env) == differences(None, env) == []


# -- verdicts ------------------------------------------------------------------------------------

def test_a_different_replay_of_an_older_recipe_names_what_the_recipe_did_not_record(env):
    old = {key: env[key] for key in OLD_KEYS}
    text = verdict(False, old, env)
    assert text.startswith("**Different:**")
    assert "every fact of the environment that both recorded was the same" in text
    assert "The original did not record CPU, torch threads, CPU capability, oneDNN, PNG zlib and ffmpeg" in text
    assert "not recorded → " not in text and "→" not in text
    assert verdict(True, old, env) == "**Identical:** the replay made the same bytes."


def test_a_replay_that_recorded_less_is_said_to_be_the_replay(env):
    text = verdict(False, {**env, "torch": "old"}, {key: env[key] for key in OLD_KEYS})
    assert f"The environment differed: torch: old → {env['torch']}." in text
    assert "The replay did not record CPU, torch threads" in text


def test_gpu_facts_are_not_missing_on_a_side_that_ran_on_the_cpu(env):
    gpu = {**env, "device": "cuda", "dtype": "float16", "gpu": "NVIDIA H200", "cuda": "12.8", "cudnn": 91002}
    text = verdict(False, gpu, env)
    assert text == ("**Different:** the replay made other bytes. The environment differed: device: cuda → cpu; "
                    "dtype: float16 → float32.")
    older_gpu = {key: value for key, value in gpu.items() if key != "gpu"}
    assert "The original did not record GPU, so" in verdict(False, older_gpu, gpu)


def test_a_different_replay_with_the_same_recorded_environment_says_what_else_to_try(env):
    text = verdict(False, env, dict(env))
    assert text.startswith("**Different:** the replay made other bytes although the recorded environment was "
                           "the same.")
    assert "Replay it again" in text and "\n" not in text


def test_a_recipe_without_an_environment_gets_no_guess(env):
    assert verdict(False, {}, env) == ("**Different:** the replay made other bytes. The original's recipe records "
                                       "no environment, so what changed cannot be told.")


def test_an_identical_replay_in_another_environment_says_the_difference_did_not_matter(env):
    assert verdict(True, env, {**env, "torch_threads": 1}) == (
        "**Identical:** the replay made the same bytes, although the environment differed (torch threads: 2 → 1).")


def test_the_verdict_module_needs_no_torch():
    code = "import sys, pipelines.environment; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=pathlib.Path(__file__).resolve().parents[1])
    assert (out.returncode, out.stdout.strip()) == (0, "False"), out.stderr
