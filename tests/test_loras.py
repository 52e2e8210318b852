"""LoRA tags in prompts, LoRA/embedding files and their A1111 hashes, and applying them to the tiny
SD1.5 pipeline for one job with an exact return to the base output afterwards; broken files are left
out when a folder is scanned, and a job that meets one fails with its name and what to do (issue 11)."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")          # before anything imports huggingface_hub

import hashlib
import re
import shutil

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline
from diffusers.utils import convert_state_dict_to_kohya
from gradio_client.exceptions import AppError
from safetensors.torch import save_file

from pipelines.demo_model import build_sd15
from pipelines.errors import AtelierError, BadModelFile
from pipelines.loras import (
    applied_embeddings,
    applied_loras,
    lora_shorthash,
    safetensors_metadata,
    scan_folder,
)
from pipelines.prompt_syntax import LoraUse, extract_loras
from pipelines.spec import Txt2Img, WorkflowSpec
from tests.extras import random_lora

PROMPT = "a photo of a cat"
# peft warns on every second adapter; harmless (diffusers_offline.md section 6).
pytestmark = pytest.mark.filterwarnings("ignore:Already found a `peft_config` attribute")


@pytest.mark.parametrize("prompt, text, loras", [
    ("a cat, <lora:x:0.5>", "a cat", (LoraUse("x", 0.5),)),
    ("<lora:x>, a cat", "a cat", (LoraUse("x", 1.0),)),
    ("a <lora:x:-1> cat", "a cat", (LoraUse("x", -1.0),)),
    ("a cat, <lora:x:.8>, <lora:my style:1.2:0.5>, a dog", "a cat, a dog",
     (LoraUse("x", 0.8), LoraUse("my style", 1.2))),
    ("a cat,<lora:x:0.7:0.3:2>,a dog", "a cat, a dog", (LoraUse("x", 0.7),)),
    ("a cat, <hypernet:h:1>  (red:1.2)", "a cat, <hypernet:h:1>  (red:1.2)", ()),
])
def test_extract_loras(prompt, text, loras):
    assert extract_loras(prompt) == (text, loras)


@pytest.mark.parametrize("prompt, message", [
    ("a <lora:x:abc>", r"<lora:x:abc>.*not a number.*0\.8"),
    ("a <lora:x:nan>", r"<lora:x:nan>.*not a number"),
    ("a <lora::1>", r"<lora::1> names no LoRA"),
    ("<lora:x:0.5>, <lora:x:0.3>", r"^LoRA 'x' appears twice in the prompt; use it once$"),
])
def test_extract_loras_errors(prompt, message):
    with pytest.raises(ValueError, match=message):
        extract_loras(prompt)


@pytest.fixture(scope="module")
def pipe():
    # One thread: on a busy 2-core machine two threads spin against other processes (3x slower);
    # the images are the same either way (diffusers_offline.md section 2).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield build_sd15()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def files(pipe, tmp_path_factory):
    d = tmp_path_factory.mktemp("extras")
    unet_targets = ["to_q", "to_k", "to_v", "to_out.0"]
    a = random_lora(pipe.unet, unet_targets, seed=1)
    StableDiffusionPipeline.save_lora_weights(d, unet_lora_layers=a, weight_name="style_a.safetensors")
    kohya = convert_state_dict_to_kohya({"unet." + k: v for k, v in a.items()})
    save_file({k: v.contiguous() for k, v in kohya.items()}, d / "style_a_kohya.safetensors")
    StableDiffusionPipeline.save_lora_weights(         # UNet and text encoder
        d, unet_lora_layers=random_lora(pipe.unet, unet_targets, seed=2),
        text_encoder_lora_layers=random_lora(pipe.text_encoder, ["q_proj", "k_proj", "v_proj"], seed=3),
        weight_name="style_b.safetensors")
    save_file({"foo.weight": torch.randn(3, 4)}, d / "not_a_lora.safetensors")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        save_file({"emb_params": torch.randn(2, pipe.text_encoder.config.hidden_size)}, d / "tinyemb.safetensors")
    (d / "pickled.ckpt").write_bytes(b"\x80\x04not opened")
    return {p.stem: str(p) for p in d.iterdir()}


def render(pipe, prompt=PROMPT, seed=7):
    out = pipe(prompt, height=64, width=64, num_inference_steps=2, guidance_scale=7.0,
               generator=torch.Generator("cpu").manual_seed(seed))
    return np.asarray(out.images[0])


@pytest.fixture(scope="module")
def base(pipe):
    return render(pipe)


def test_scan_folder_lists_safetensors_only(files, tmp_path):
    folder = os.path.dirname(files["style_a"])
    found = scan_folder(folder, "lora")
    assert sorted(found) == ["not_a_lora", "style_a", "style_a_kohya", "style_b", "tinyemb"]
    assert found["style_a"].path == files["style_a"] and found["style_a"].kind == "lora"
    with open(files["style_a"], "rb") as f:
        assert found["style_a"].sha256 == hashlib.sha256(f.read()).hexdigest()
    assert scan_folder(tmp_path / "missing", "embedding") == {}
    with pytest.raises(ValueError, match="kind"):
        scan_folder(folder, "hypernet")


def test_lora_shorthash_is_a1111_addnet_hash(files, tmp_path):
    path = files["style_a"]
    h = lora_shorthash(path)
    assert re.fullmatch(r"[0-9a-f]{12}", h)
    with open(path, "rb") as f:                        # sha256 of the bytes after the header
        n = int.from_bytes(f.read(8), "little")
        f.seek(8 + n)
        assert h == hashlib.sha256(f.read()).hexdigest()[:12]
    tensors = {"x.lora_down.weight": torch.ones(2, 2)}
    save_file(tensors, tmp_path / "one.safetensors", metadata={"note": "first"})
    save_file(tensors, tmp_path / "two.safetensors", metadata={"note": "second, longer"})
    save_file({"x.lora_down.weight": torch.zeros(2, 2)}, tmp_path / "three.safetensors")
    save_file(tensors, tmp_path / "four.safetensors", metadata={"sshs_model_hash": "ABCDEF0123456789" * 4})
    assert lora_shorthash(tmp_path / "one.safetensors") == lora_shorthash(tmp_path / "two.safetensors")
    assert lora_shorthash(tmp_path / "one.safetensors") != lora_shorthash(tmp_path / "three.safetensors")
    assert lora_shorthash(tmp_path / "four.safetensors") == "abcdef012345"
    assert lora_shorthash(path) != lora_shorthash(files["style_b"])
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 40)
    with pytest.raises(ValueError, match="junk.safetensors is not a safetensors file"):
        lora_shorthash(tmp_path / "junk.safetensors")


def test_lora_weights_and_exact_unload(pipe, files, base):
    with applied_loras(pipe, [(files["style_a"], 1.0)]):
        full = render(pipe)
        assert np.array_equal(render(pipe), full)         # deterministic with the LoRA in
    assert not np.array_equal(full, base)
    with applied_loras(pipe, [(files["style_a"], 0.0)]):
        assert np.array_equal(render(pipe), base)
    with applied_loras(pipe, [(files["style_a_kohya"], 1.0)]):
        assert np.array_equal(render(pipe), full)         # kohya and diffusers formats agree
    assert not pipe.get_list_adapters()
    assert np.array_equal(render(pipe), base)
    with applied_loras(pipe, []):
        assert np.array_equal(render(pipe), base)


def test_two_loras_at_once(pipe, files, base):
    with applied_loras(pipe, [(files["style_b"], 1.0)]):
        only_b = render(pipe)
    with applied_loras(pipe, [(files["style_a"], 0.7), (files["style_b"], 0.5)]):
        assert set(pipe.get_active_adapters()) == {"atelier_lora_0", "atelier_lora_1"}
        mixed = render(pipe)
    assert not np.array_equal(mixed, base) and not np.array_equal(mixed, only_b)
    assert not np.array_equal(only_b, base)
    assert np.array_equal(render(pipe), base)             # the text-encoder LoRA went too


def test_unloads_when_the_body_raises(pipe, files, base):
    with pytest.raises(RuntimeError, match="job failed"), applied_loras(pipe, [(files["style_a"], 1.0)]):
        raise RuntimeError("job failed")
    assert not pipe.get_list_adapters()
    assert np.array_equal(render(pipe), base)


def test_not_a_lora_names_the_file(pipe, files, base):
    bad = [(files["style_a"], 1.0), (files["not_a_lora"], 1.0)]
    with pytest.raises(ValueError, match="not_a_lora.safetensors is not a LoRA"), applied_loras(pipe, bad):
        pytest.fail("the body must not run")
    with pytest.raises(ValueError, match=r"pickled.ckpt: only \.safetensors"), \
            applied_loras(pipe, [(files["pickled"], 1.0)]):
        pytest.fail("the body must not run")
    assert np.array_equal(render(pipe), base)             # style_a, loaded first, was removed


def test_embedding_by_its_token(pipe, files):
    prompt = "a photo of tinyemb"
    before, n_tokens = render(pipe, prompt), len(pipe.tokenizer)
    with applied_embeddings(pipe, [(files["tinyemb"], "tinyemb")]):
        assert len(pipe.tokenizer) == n_tokens + 2        # tinyemb, tinyemb_1
        with_embedding = render(pipe, prompt)
    assert not np.array_equal(with_embedding, before)
    assert len(pipe.tokenizer) == n_tokens
    assert np.array_equal(render(pipe, prompt), before)
    with pytest.raises(ValueError, match="style_a.safetensors is not a textual-inversion embedding"), \
            applied_embeddings(pipe, [(files["style_a"], "style")]):
        pytest.fail("the body must not run")
    assert len(pipe.tokenizer) == n_tokens


# -- broken files: skipped when the folder is scanned, named when a job meets one ----------------------


def broken_copies(source: str, folder, stem: str = "") -> dict[str, str]:
    """A truncated copy of the safetensors file `source` and a file of random bytes, in `folder`; their paths
    by kind of damage."""
    data = open(source, "rb").read()
    truncated, garbage = folder / f"{stem}truncated.safetensors", folder / f"{stem}garbage.safetensors"
    truncated.write_bytes(data[:len(data) - 100])
    garbage.write_bytes(np.random.default_rng(5).bytes(4096))
    return {"truncated": str(truncated), "garbage": str(garbage)}


def test_a_damaged_file_is_refused_by_its_header_naming_it(tmp_path):
    source = tmp_path / "small.safetensors"
    save_file({"a": torch.randn(3, 5), "b": torch.ones(2, dtype=torch.bfloat16), "c": torch.zeros(0)}, source,
              metadata={"note": "x"})
    data = source.read_bytes()
    assert safetensors_metadata(source) == {"note": "x"}
    damaged = tmp_path / "damaged.safetensors"
    for variant in [data[:n] for n in range(len(data))] + [data + b"\0"]:
        damaged.write_bytes(variant)
        with pytest.raises(BadModelFile, match=r"^damaged\.safetensors is not a safetensors file: "):
            safetensors_metadata(damaged)


def test_truncated_and_garbage_files_are_skipped_with_one_warning_each(files, tmp_path, caplog):
    broken = broken_copies(files["style_a"], tmp_path)
    shutil.copy(files["style_a"], tmp_path / "sound.safetensors")
    with caplog.at_level("WARNING", logger="pipelines.loras"):
        for kind in ("lora", "embedding", "lora"):
            assert sorted(scan_folder(tmp_path, kind)) == ["sound"]
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2, warned                        # once per file, however often the folder is scanned
    truncated = next(m for m in warned if "truncated.safetensors" in m)
    garbage = next(m for m in warned if "garbage.safetensors" in m)
    assert truncated.startswith(f"{broken['truncated']}: skipped, not listed: truncated.safetensors is not a "
                                "safetensors file: ") and "not fully covered" in truncated
    assert garbage.startswith(f"{broken['garbage']}: skipped, not listed: garbage.safetensors is not a safetensors "
                              "file: ") and "header too large" in garbage
    assert all(m.endswith("Download it again or remove it.") for m in warned)


def test_a_file_broken_after_the_scan_fails_naming_it_and_what_to_do(pipe, files, base, tmp_path):
    loras, embeddings = tmp_path / "loras", tmp_path / "embeddings"
    loras.mkdir(), embeddings.mkdir()
    lora, embedding = loras / "brittle.safetensors", embeddings / "brittle_emb.safetensors"
    shutil.copy(files["style_a"], lora)
    shutil.copy(files["tinyemb"], embedding)
    assert "brittle" in scan_folder(loras, "lora") and "brittle_emb" in scan_folder(embeddings, "embedding")
    for path in (lora, embedding):
        path.write_bytes(path.read_bytes()[:-64])
    remedy = "Download it again or remove it from the {} folder, then run the job again."
    with pytest.raises(BadModelFile, match=r"^brittle\.safetensors is not a safetensors file: .*not fully covered\. "
                       + re.escape(remedy.format("loras")) + "$") as info, applied_loras(pipe, [(str(lora), 1.0)]):
        pytest.fail("the body must not run")
    assert isinstance(info.value, AtelierError) and info.value.code == "bad_model_file"   # the job's own error
    with pytest.raises(BadModelFile, match=re.escape(remedy.format("embeddings"))), \
            applied_embeddings(pipe, [(str(embedding), "brittle_emb")]):
        pytest.fail("the body must not run")
    with pytest.raises(BadModelFile, match="not_a_lora.safetensors is not a LoRA this model can load"), \
            applied_loras(pipe, [(files["not_a_lora"], 1.0)]):
        pytest.fail("the body must not run")
    assert np.array_equal(render(pipe), base)


def test_a_prompt_naming_a_broken_lora_is_told_it_is_not_there(client, extras):
    broken = broken_copies(str(extras.loras_dir / "ink.safetensors"), extras.loras_dir, stem="ink_")
    try:
        for name in ("ink_truncated", "ink_garbage"):
            with pytest.raises(AppError, match=rf"LoRA '{name}' not found; available: \['ink', 'paper'\]"):
                client.predict(prompt=f"a cat <lora:{name}:0.8>", api_name="/txt2img")
    finally:
        for path in broken.values():
            os.unlink(path)


def test_a_lora_broken_between_compiling_and_running_fails_the_job_by_its_name(atelier, owner, extras):
    path = extras.loras_dir / "brittle.safetensors"
    shutil.copy(extras.loras_dir / "ink.safetensors", path)
    try:
        plan = atelier.service.quote(owner, WorkflowSpec.single(Txt2Img(prompt="a cat <lora:brittle:0.8>", seed=4)))
        path.write_bytes(path.read_bytes()[:-64])
        # Queued as compiled (submit_plan would compile it again and refuse the broken file up front).
        job = atelier.service.wait(owner, atelier.service._queue(owner, plan, spec="").id, timeout=120)
    finally:
        path.unlink()
    assert job.status == "failed"
    assert job.error.startswith("The lora 'brittle' this job uses is no longer there"), job.error


def test_a_listed_file_that_is_no_lora_fails_the_call_with_its_name_not_an_internal_error(client, extras):
    path = extras.loras_dir / "notalora.safetensors"
    save_file({"foo.weight": torch.randn(3, 4)}, path)         # a sound header, but no LoRA inside
    try:
        with pytest.raises(AppError, match=r"notalora\.safetensors is not a LoRA this model can load: .*Use a LoRA "
                                           r"made for this model's family\.") as info:
            client.predict(prompt="a cat <lora:notalora:0.8>", seed=6, api_name="/txt2img")
    finally:
        path.unlink()
    assert "Internal error" not in str(info.value)
