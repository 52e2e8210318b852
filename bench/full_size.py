"""Seconds per image and peak GPU memory of FLUX.1-dev at 1024², Qwen-Image at 1328², Z-Image-Turbo at 1024² and
Wan 2.2 TI2V-5B at 480p (832x480, 81 frames), on the published architectures with random weights: no download.

    python bench/full_size.py [--only flux1 qwen-image z-image wan22] [--runs 2] [--steps N] [--device cuda]
    python bench/full_size.py --count          # parameter counts only, built on the meta device (CPU, seconds)

Each model is built whole on the device in its family's dtype (bfloat16), from the configs the model cards and the
published config.json files give (`ARCHITECTURES`; `--count` checks them against the published sizes: FLUX.1
11.9B, Qwen-Image 20.4B, Z-Image 6.15B, Wan 2.2 5B transformers). The tokenizers are the demo models' (small
vocabularies whose ids the full-size encoders take), so the text encoders see real sequence lengths. One warm-up
run, then `--runs` timed ones at the family's default steps unless `--steps`; peak memory is
`torch.cuda.max_memory_allocated` over the timed runs. This is a benchmark, not a test; it needs a GPU with room
for the whole pipeline (Qwen-Image: about 58 GB in bf16).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# family -> (size, frames, published transformer parameters in billions)
RUNS = {"flux1": ((1024, 1024), 0, 11.9), "qwen-image": ((1328, 1328), 0, 20.4), "z-image": ((1024, 1024), 0, 6.15),
        "wan22": ((832, 480), 81, 5.0)}


def flux_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=16, layers_per_block=2,
                         down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                         block_out_channels=[128, 256, 512, 512], scaling_factor=0.3611, shift_factor=0.1159,
                         use_quant_conv=False, use_post_quant_conv=False)


def t5_xxl(vocab: int = 32128, umt5: bool = False):
    import transformers

    cls, config = ((transformers.UMT5EncoderModel, transformers.UMT5Config) if umt5 else
                   (transformers.T5EncoderModel, transformers.T5Config))
    return cls(config(d_model=4096, d_ff=10240, d_kv=64, num_heads=64, num_layers=24, vocab_size=vocab,
                      feed_forward_proj="gated-gelu", is_encoder_decoder=False))


def build(family: str):
    """The full-size pipeline of `family` with random weights, built on the current default device and dtype."""
    import diffusers
    import transformers

    from pipelines.demo_model import _make_tokenizer
    from pipelines.demos.qwen import make_qwen_tokenizer
    from pipelines.demos.t5 import make_t5_tokenizer

    if family == "flux1":
        clip_tokenizer = _make_tokenizer()
        clip = transformers.CLIPTextModel(transformers.CLIPTextConfig(
            vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
            projection_dim=768, bos_token_id=clip_tokenizer.bos_token_id, eos_token_id=clip_tokenizer.eos_token_id,
            pad_token_id=clip_tokenizer.pad_token_id))
        transformer = diffusers.FluxTransformer2DModel(
            patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
            num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768, guidance_embeds=True,
            axes_dims_rope=(16, 56, 56))
        return diffusers.FluxPipeline(
            scheduler=on_cpu(lambda: diffusers.FlowMatchEulerDiscreteScheduler(
                shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15)),
            vae=flux_vae(), text_encoder=clip, tokenizer=clip_tokenizer, text_encoder_2=t5_xxl(),
            tokenizer_2=make_t5_tokenizer(), transformer=transformer)
    if family == "qwen-image":
        config = transformers.Qwen2_5_VLConfig(     # Qwen2.5-VL-7B-Instruct's
            text_config={"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
                         "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064},
            vision_config={"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
                           "out_hidden_size": 3584})
        transformer = diffusers.QwenImageTransformer2DModel(
            patch_size=2, in_channels=64, out_channels=16, num_layers=60, attention_head_dim=128,
            num_attention_heads=24, joint_attention_dim=3584, guidance_embeds=False, axes_dims_rope=(16, 56, 56))
        return diffusers.QwenImagePipeline(
            scheduler=on_cpu(lambda: diffusers.FlowMatchEulerDiscreteScheduler(
                use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9, base_image_seq_len=256,
                max_image_seq_len=8192, shift_terminal=0.02)),
            vae=diffusers.AutoencoderKLQwenImage(), text_encoder=transformers.Qwen2_5_VLForConditionalGeneration(config),
            tokenizer=make_qwen_tokenizer(), transformer=transformer)
    if family == "z-image":
        qwen3 = transformers.Qwen3Model(transformers.Qwen3Config(
            hidden_size=2560, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
            intermediate_size=9728, vocab_size=151936, tie_word_embeddings=True))
        transformer = diffusers.ZImageTransformer2DModel(
            all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=3840, n_layers=30, n_refiner_layers=2,
            n_heads=30, n_kv_heads=30, cap_feat_dim=2560, axes_dims=[32, 48, 48], axes_lens=[1536, 512, 512])
        return diffusers.ZImagePipeline(scheduler=on_cpu(lambda: diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0)),
                                        vae=flux_vae(), text_encoder=qwen3, tokenizer=make_qwen_tokenizer(),
                                        transformer=transformer)
    if family == "wan22":
        transformer = diffusers.WanTransformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=24, attention_head_dim=128, in_channels=48, out_channels=48,
            text_dim=4096, freq_dim=256, ffn_dim=14336, num_layers=30, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
        vae = diffusers.AutoencoderKLWan(base_dim=160, decoder_base_dim=256, z_dim=48, dim_mult=[1, 2, 4, 4],
                                         num_res_blocks=2, temperal_downsample=[False, True, True], is_residual=True,
                                         in_channels=12, out_channels=12, patch_size=2, scale_factor_spatial=16,
                                         scale_factor_temporal=4)
        return diffusers.WanPipeline(
            scheduler=on_cpu(lambda: diffusers.UniPCMultistepScheduler(
                prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0)),
            vae=vae, text_encoder=t5_xxl(vocab=256384, umt5=True), tokenizer=make_t5_tokenizer(),
            transformer=transformer, expand_timesteps=True)
    raise ValueError(f"no full-size recipe for {family!r}; choose one of {list(RUNS)}")


def on_cpu(make):
    """`make()` outside the device being built on: schedulers keep their tables on the CPU (and a meta device has
    no data for them)."""
    import torch

    with torch.device("cpu"):
        return make()


def parameters(module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=list(RUNS))
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=0, help="0: the family's default steps")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--count", action="store_true", help="only build on the meta device and count parameters")
    args = parser.parse_args()

    import torch

    from pipelines.backend import prompting
    from pipelines.families import FAMILIES
    from pipelines.placement import family_dtype

    for name in args.only:
        (width, height), frames, published = RUNS[name]
        family = FAMILIES[name]
        if args.count:
            with torch.device("meta"):
                pipe = build(name)
            print(f"{name:<12} transformer {parameters(pipe.transformer):6.2f}B (published {published}B), "
                  f"text encoder {parameters(pipe.text_encoder):5.2f}B, VAE {parameters(pipe.vae):5.2f}B", flush=True)
            continue
        device = torch.device(args.device)
        dtype = family_dtype(name, device, torch.float16)
        started = time.perf_counter()
        with torch.device(device):
            torch.set_default_dtype(dtype)
            pipe = build(name)
            torch.set_default_dtype(torch.float32)
        pipe.set_progress_bar_config(disable=True)
        built = time.perf_counter() - started
        steps = args.steps or family.defaults.steps

        class Step:            # what `prompting` reads of a plan step
            model = type("Model", (), {"family": name})
            cfg_scale, negative_prompt = family.defaults.cfg_scale, ""

        call = dict(prompt=["a lighthouse at dusk"], width=width, height=height, num_inference_steps=steps,
                    generator=torch.Generator("cpu").manual_seed(1), output_type="np", **prompting(Step, 1))
        if frames:
            call["num_frames"] = frames
        pipe(**call)                                          # warm-up
        torch.cuda.reset_peak_memory_stats()
        seconds = []
        for _ in range(args.runs):
            begun = time.perf_counter()
            pipe(**call)
            torch.cuda.synchronize()
            seconds.append(time.perf_counter() - begun)
        print(f"{name:<12} {width}x{height}{f'x{frames}' if frames else ''} {steps} steps {dtype}: "
              f"{statistics.median(seconds):.2f} s per {'video' if frames else 'image'}, peak "
              f"{torch.cuda.max_memory_allocated() / 1024 ** 3:.1f} GiB (built in {built:.0f} s)", flush=True)
        del pipe
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
