"""The tiny LTX-2 demo model: seeded weights, a code-built Gemma tokenizer, a save/load round trip, and real
text-to-video and image-to-video runs through diffusers' LTX-2 pipelines (video frames plus stereo audio)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import LTX2ImageToVideoPipeline, LTX2Pipeline

from pipelines.demos.gemma import make_gemma_tokenizer
from pipelines.demos.ltx2 import LTX2_FACTS, build_ltx2, build_ltx2_img2vid

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# The smallest run the real decoder allows: 64x64 is a 2x2 latent (at 32x32 the 1x1 latent cannot be reflect-padded),
# 9 frames are 2 latent frames. Short prompts padded to 16 tokens keep Gemma cheap.
SIZE = 64
FRAMES = 9
CALL = {"width": SIZE, "height": SIZE, "num_frames": FRAMES, "frame_rate": 24.0, "num_inference_steps": 2,
        "max_sequence_length": 16, "output_type": "np"}


def _run(pipe, prompt, seed=0, **extra):
    return pipe(prompt=prompt, generator=torch.Generator("cpu").manual_seed(seed), **CALL, **extra)


@pytest.fixture(scope="module")
def pipe():
    return build_ltx2(seed=0)


@pytest.fixture(scope="module")
def cat(pipe):
    return _run(pipe, "a cat", negative_prompt="blurry")


@pytest.fixture(scope="module")
def saved(pipe, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ltx2")
    pipe.save_pretrained(folder)
    return folder


def _state(p):
    return {f"{name}.{k}": v for name in ("text_encoder", "connectors", "transformer", "vae", "audio_vae", "vocoder")
            for k, v in getattr(p, name).state_dict().items()}


def test_same_seed_same_weights_other_seed_other_weights(pipe):
    again, other = _state(build_ltx2(seed=0)), _state(build_ltx2(seed=1))
    mine = _state(pipe)
    assert mine.keys() == again.keys() == other.keys()
    assert all(torch.equal(mine[k], again[k]) for k in mine)
    # Only the randomly initialised tensors must differ (norm weights and registered constants do not).
    assert not torch.equal(mine["transformer.proj_in.weight"], other["transformer.proj_in.weight"])
    assert not torch.equal(mine["text_encoder.model.language_model.embed_tokens.weight"],
                           other["text_encoder.model.language_model.embed_tokens.weight"])


def test_building_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_ltx2(seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_tokenizer_is_byte_complete_and_matches_the_text_encoder(pipe):
    tok = make_gemma_tokenizer()
    ids = tok("héllo wörld 猫!").input_ids
    assert ids[0] == tok.bos_token_id and tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == "héllo wörld 猫!"
    assert tok("a cat").input_ids != tok("a dog").input_ids
    config = pipe.text_encoder.config.text_config
    assert config.vocab_size == len(pipe.tokenizer)
    assert (config.pad_token_id, config.eos_token_id, config.bos_token_id) == (
        pipe.tokenizer.pad_token_id, pipe.tokenizer.eos_token_id, pipe.tokenizer.bos_token_id)


def test_txt2vid_gives_frames_and_audio(pipe, cat):
    assert isinstance(pipe, LTX2Pipeline)
    frames = cat.frames
    assert frames.shape == (1, FRAMES, SIZE, SIZE, 3)
    assert np.isfinite(frames).all() and frames.min() >= 0 and frames.max() <= 1
    assert frames.std() > 0.01
    audio = cat.audio
    assert audio.shape[:2] == (1, LTX2_FACTS["audio_channels"]) and torch.isfinite(audio).all()
    assert pipe.vocoder.config.output_sampling_rate == LTX2_FACTS["audio_sample_rate"]
    seconds = audio.shape[-1] / LTX2_FACTS["audio_sample_rate"]
    assert abs(seconds - FRAMES / CALL["frame_rate"]) < 0.1  # the audio lasts about as long as the video


def test_frame_rule_and_size_rule(pipe):
    assert pipe.vae_spatial_compression_ratio == LTX2_FACTS["size_multiple"] == 32
    assert pipe.vae_temporal_compression_ratio == LTX2_FACTS["frame_multiple"] == 8
    with pytest.raises(ValueError, match="divisible by 32"):
        pipe(prompt="x", **{**CALL, "width": 48})
    with pytest.raises(ValueError, match="divisible by the number of learnable registers"):
        pipe(prompt="x", **{**CALL, "max_sequence_length": 12})
    # 32x32 denoises but cannot be decoded: the decoder reflect-pads a 1x1 latent (LTX2_FACTS["min_size"]).
    assert LTX2_FACTS["min_size"] == 64
    with pytest.raises(RuntimeError, match="Padding size"):
        pipe(prompt="x", **{**CALL, "width": 32, "height": 32})


def test_one_step_gives_nan_latents(pipe):
    """LTX's terminal-shift schedule divides 0 by 0 for a single step (LTX2_FACTS["min_steps"])."""
    assert LTX2_FACTS["min_steps"] == 2
    with np.errstate(invalid="ignore"):  # numpy's "invalid value encountered in divide" is the 0 / 0
        out = pipe(prompt="x", **{**CALL, "num_inference_steps": 1, "output_type": "latent"})
    assert not torch.isfinite(out.frames).all()


def test_two_prompts_differ(pipe, cat):
    dog = _run(pipe, "a dog", negative_prompt="blurry")
    assert np.abs(cat.frames - dog.frames).max() > 1e-3


def test_saved_pipeline_loads_and_gives_the_same_frames(saved, cat):
    loaded = LTX2Pipeline.from_pretrained(saved, local_files_only=True)
    loaded.set_progress_bar_config(disable=True)
    assert type(loaded.text_encoder).__name__ == "Gemma3ForConditionalGeneration"
    assert loaded.tokenizer("a cat").input_ids == make_gemma_tokenizer()("a cat").input_ids
    again = _run(loaded, "a cat", negative_prompt="blurry")
    assert np.array_equal(again.frames, cat.frames)
    assert torch.equal(again.audio, cat.audio)


def test_img2vid_runs_from_the_same_components(pipe):
    i2v = LTX2ImageToVideoPipeline.from_pipe(pipe)
    i2v.set_progress_bar_config(disable=True)
    assert i2v.transformer is pipe.transformer
    image = PIL.Image.fromarray((np.random.RandomState(0).rand(SIZE, SIZE, 3) * 255).astype(np.uint8))
    # image_crf=0: the default H.264 re-compression of the image needs PyAV, which this image does not have.
    out = _run(i2v, "a cat", image=image, image_crf=0)
    assert out.frames.shape == (1, FRAMES, SIZE, SIZE, 3) and np.isfinite(out.frames).all()
    built = build_ltx2_img2vid(seed=0)  # the same model, built straight into the image-to-video class
    assert isinstance(built, LTX2ImageToVideoPipeline)
    assert all(torch.equal(a, b) for a, b in zip(_state(built).values(), _state(pipe).values()))


def test_facts_name_real_call_arguments():
    import inspect

    t2v = inspect.signature(LTX2Pipeline.__call__).parameters
    i2v = inspect.signature(LTX2ImageToVideoPipeline.__call__).parameters
    for ours, theirs in LTX2_FACTS["call_args"].items():
        assert theirs in (i2v if ours == "image" else t2v), theirs
    defaults = LTX2_FACTS["call_defaults"]
    assert t2v["num_frames"].default is None  # None means 121 for LTX-2.0 pipelines without a duration head
    for name, value in defaults.items():
        if name != "num_frames":
            assert t2v[name].default == value, name
    assert i2v["image_crf"].default is None  # None: CRF 33 for a Gemma 3 text encoder, which needs PyAV
    assert set(LTX2_FACTS["tasks"].values()) == {"LTX2Pipeline", "LTX2ImageToVideoPipeline"}
