"""Tiny, seeded, randomly initialised FLUX.2 pipelines, built offline: FLUX.2 klein (Qwen3 text
encoder) and FLUX.2 [dev] (Mistral 3 text encoder, with a tokenizer standing in for its Pixtral
processor, which needs torchvision).

Every component is the real class (`Flux2Transformer2DModel`, `AutoencoderKLFlux2`,
`Qwen3ForCausalLM` / `Mistral3ForConditionalGeneration`, their tokenizers) with a tiny config, so the
real pipeline code runs end to end; the images are noise. The same seed gives identical weights, and
the caller's RNG is left untouched (see `demo_model.build_sd15`).

`FLUX2_KLEIN_FACTS` and `FLUX2_FACTS` record what the real models expect, for the family declaration.
"""

import torch
from diffusers import (
    AutoencoderKLFlux2,
    FlowMatchEulerDiscreteScheduler,
    Flux2KleinPipeline,
    Flux2Pipeline,
    Flux2Transformer2DModel,
)
from diffusers.pipelines.flux2.system_messages import SYSTEM_MESSAGE
from tokenizers import Tokenizer, decoders
from tokenizers.models import BPE
from transformers import Mistral3Config, Mistral3ForConditionalGeneration, PreTrainedTokenizerFast

from pipelines.demos.qwen import bytes_to_unicode, learn_merges, make_qwen3, make_qwen_tokenizer, qwen_pre_tokenizer

# Shared by FLUX.2 klein and [dev].
_FLUX2_COMMON = {
    # vae_scale_factor = 2 ** (len(vae.block_out_channels) - 1) = 8 and latents are patchified 2x2:
    # multiples of 16. Other sizes log a warning and are floored to a multiple of 16.
    "size_multiple": 16,
    "size_rule": "floor",
    "default_size": (1024, 1024),  # the pipelines' default_sample_size (128) * 8
    # The schedule's shift is computed from the image token count and the step count
    # (compute_empirical_mu); the scheduler's base/max shift are not used.
    "scheduler": "FlowMatchEulerDiscreteScheduler",
    # Prompts are padded to this many tokens (chat template included).
    "max_sequence_length": 512,
    "dtype": "bfloat16",  # the published weights' dtype
}

FLUX2_KLEIN_FACTS = {
    **_FLUX2_COMMON,
    "family": "flux2-klein",
    "checkpoint": "black-forest-labs/FLUX.2-klein-4B",
    # The 4B and 9B klein checkpoints are step-distilled (model_index.json: is_distilled=true): 4 steps,
    # guidance_scale 1.0, and the pipeline never runs CFG (it warns if guidance_scale > 1).
    "default_steps": 4,
    "default_guidance": 1.0,
    "guidance": "distilled",
    "guidance_arg": "guidance_scale",
    # No negative_prompt argument: with CFG (only the undistilled "base" variants) the negative branch
    # always encodes "" (negative_prompt_embeds can be passed instead).
    "negative_prompt": False,
    # Prompt embeddings are these hidden states of the text encoder, side by side (3 x 2560 = 7680
    # wide for Qwen3-4B); a call argument, so the text encoder needs more layers than the last index.
    "text_encoder_out_layers": (9, 18, 27),
    "tasks": {
        "txt2img": "Flux2KleinPipeline",
        # Reference-image editing is the same pipeline: pass image= (one image or a list); the output
        # size defaults to the (first) image's, capped at 1024*1024 pixels.
        "edit": "Flux2KleinPipeline",
        "inpaint": "Flux2KleinInpaintPipeline",  # image=, mask_image=, strength= (0.8), image_reference=
    },
    "call_args": {"guidance": "guidance_scale", "max_sequence_length": "max_sequence_length",
                  "extra": ["text_encoder_out_layers"]},
    "variants": {"base": {"checkpoint": "black-forest-labs/FLUX.2-klein-base-4B", "is_distilled": False,
                          "guidance": "cfg", "default_steps": 50, "default_guidance": 4.0}},
}

FLUX2_FACTS = {
    **_FLUX2_COMMON,
    "family": "flux2",
    "checkpoint": "black-forest-labs/FLUX.2-dev",
    # Guidance-distilled: guidance_scale goes into the transformer's guidance embedding, one pass per
    # step, no negative prompt. 50 steps and guidance 4 are the pipeline's defaults and the model
    # card's (which calls 28 steps a good trade-off); diffusers' docstring example uses 2.5.
    "default_steps": 50,
    "default_guidance": 4.0,
    "guidance": "distilled",
    "guidance_arg": "guidance_scale",
    "negative_prompt": False,
    "text_encoder_out_layers": (10, 20, 30),  # of Mistral Small 3.1's 40 layers, 3 x 5120 wide
    "tasks": {
        "txt2img": "Flux2Pipeline",
        "edit": "Flux2Pipeline",  # image= (one or a list of reference images)
    },
    "call_args": {"guidance": "guidance_scale", "max_sequence_length": "max_sequence_length",
                  "extra": ["text_encoder_out_layers", "caption_upsample_temperature"]},
    # The real tokenizer is a PixtralProcessor (AutoProcessor), which transformers 5.23 only imports
    # with torchvision; the 24B Mistral 3 text encoder also rewrites prompts when
    # caption_upsample_temperature is set (BFL recommends 0.15), which needs that processor.
    "requires": ["torchvision"],
}

# FLUX.2's scheduler_config.json: the shift is dynamic (the pipelines pass `mu`), which needs
# use_dynamic_shifting; the other values are the FLUX defaults and do not change the schedule.
FLUX2_SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
    "base_shift": 0.5,
    "max_shift": 1.15,
    "base_image_seq_len": 256,
    "max_image_seq_len": 4096,
    "time_shift_type": "exponential",
}

# Qwen3 width (2560 in Qwen3-4B). The transformer sees three layers of it side by side.
_KLEIN_TEXT_HIDDEN = 16
# Flux2KleinPipeline reads hidden_states[9], [18] and [27] by default; hidden_states has
# num_layers + 1 entries and its last one is after the final norm, so 28 layers keep [27] a plain
# intermediate state, as in the 36-layer Qwen3-4B. At 16 wide they are still tiny.
_KLEIN_TEXT_LAYERS = 28


# Mistral's tekken tokenizer: its first special tokens in their real order (ids 0-19; [IMG] is 10, the
# Mistral3Config default image_token_index), then the bytes, then merges.
_MISTRAL_SPECIAL_TOKENS = (
    "<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]", "[IMG_END]",
    "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[TOOL_CONTENT]",
)

# Mistral Small 3.1's chat template reduced to what Flux2Pipeline sends: a system message and user
# messages whose content is a list of text (or image) blocks.
MISTRAL3_CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- set ns = namespace(text='') -%}"
    "{%- if message['content'] is string -%}{%- set ns.text = message['content'] -%}"
    "{%- else -%}{%- for block in message['content'] -%}"
    "{%- if block['type'] == 'text' -%}{%- set ns.text = ns.text + block['text'] -%}"
    "{%- elif block['type'] == 'image' -%}{%- set ns.text = ns.text + '[IMG]' -%}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- if message['role'] == 'system' -%}{{- '[SYSTEM_PROMPT]' + ns.text + '[/SYSTEM_PROMPT]' -}}"
    "{%- elif message['role'] == 'user' -%}{{- '[INST]' + ns.text + '[/INST]' -}}"
    "{%- elif message['role'] == 'assistant' -%}{{- ns.text + eos_token -}}{%- endif -%}"
    "{%- endfor -%}"
)

# Mistral 3 width (5120 in Mistral Small 3.1). Flux2Pipeline reads hidden_states[10], [20] and [30]:
# 31 layers keep [30] an intermediate state (the real model has 40).
_MISTRAL_TEXT_HIDDEN = 16
_MISTRAL_TEXT_LAYERS = 31


def make_mistral3_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer of Mistral's tekken kind, built offline, with a Mistral 3 chat template.

    FLUX.2 [dev] ships a PixtralProcessor as its `tokenizer`, but that class needs torchvision (see
    `FLUX2_FACTS`). Flux2Pipeline only calls `apply_chat_template(..., tokenize=True, return_dict=True,
    padding="max_length", truncation=True)` on it for the prompt, which a tokenizer with the chat
    template does identically; only caption upsampling needs the processor. The merges are learnt from
    FLUX.2's system message, so it tokenizes to whole words as with the real vocabulary (the split
    regex is Qwen's; tekken's is close and this is not a copy of it).

    Returns:
        A `PreTrainedTokenizerFast` (`TokenizersBackend` in transformers 5) that pads on the right with
        <pad>; `[INST]`, `[SYSTEM_PROMPT]` and the other control tokens are single special tokens.
    """
    merges = learn_merges([SYSTEM_MESSAGE])
    vocab = {t: i for i, t in enumerate(_MISTRAL_SPECIAL_TOKENS)}
    for c in bytes_to_unicode():
        vocab[c] = len(vocab)
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    backend = Tokenizer(BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    backend.pre_tokenizer = qwen_pre_tokenizer()
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        additional_special_tokens=[t for t in _MISTRAL_SPECIAL_TOKENS if t not in ("<unk>", "<s>", "</s>", "<pad>")],
        model_max_length=131072,
        padding_side="right",
        chat_template=MISTRAL3_CHAT_TEMPLATE,
    )


def make_mistral3(tokenizer: PreTrainedTokenizerFast) -> Mistral3ForConditionalGeneration:
    """A tiny Mistral 3 (FLUX.2 [dev]'s text encoder): 31 text layers 16 wide, a 1-layer Pixtral tower.

    The vision tower is only there because the class has one; Flux2Pipeline feeds it no images.
    """
    config = Mistral3Config(
        text_config={
            "model_type": "mistral",
            "vocab_size": len(tokenizer),
            "hidden_size": _MISTRAL_TEXT_HIDDEN,
            "intermediate_size": 2 * _MISTRAL_TEXT_HIDDEN,
            "num_hidden_layers": _MISTRAL_TEXT_LAYERS,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": _MISTRAL_TEXT_HIDDEN // 2,
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000000.0},
            "sliding_window": None,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            "tie_word_embeddings": False,
        },
        vision_config={
            "model_type": "pixtral",
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "head_dim": 8,
            "image_size": 1540,
            "patch_size": 14,
        },
        image_token_index=tokenizer.convert_tokens_to_ids("[IMG]"),
        spatial_merge_size=2,
        vision_feature_layer=-1,
        tie_word_embeddings=False,
    )
    return Mistral3ForConditionalGeneration(config).eval()


def _make_transformer(joint_attention_dim: int, guidance_embeds: bool) -> Flux2Transformer2DModel:
    """A 1+1-block FLUX.2 transformer (real klein-4B: 5 double-stream + 20 single-stream blocks)."""
    return Flux2Transformer2DModel(
        patch_size=1,
        in_channels=32 * 4,  # 32 latent channels patchified 2x2 by the VAE, as the real model
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=joint_attention_dim,
        timestep_guidance_channels=256,  # hard-coded in BFL's code
        mlp_ratio=3.0,
        # RoPE over four axes (t, h, w, l) fills the 16-wide head: 4 * 4 (real 4 * 32 = 128).
        axes_dims_rope=(4, 4, 4, 4),
        guidance_embeds=guidance_embeds,
    ).eval()


def _make_vae() -> AutoencoderKLFlux2:
    """FLUX.2's VAE, four levels (factor 8, as the real one) of 8-16 channels, 32 latent channels."""
    return AutoencoderKLFlux2(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        latent_channels=32,
        norm_num_groups=8,
        sample_size=64,
    ).eval()


def build_flux2_klein(seed: int = 0, is_distilled: bool = True) -> Flux2KleinPipeline:
    """Build a tiny FLUX.2 klein pipeline with random weights.

    Args:
        seed (`int`, defaults to 0): seeds the weights; the caller's global RNG is left untouched.
        is_distilled (`bool`, defaults to `True`): as FLUX.2-klein-4B (no CFG); `False` makes the
            "base" variant, which runs CFG when guidance_scale > 1.

    Returns:
        A `Flux2KleinPipeline` with the progress bar disabled: a 28-layer, 16-wide `Qwen3ForCausalLM`
        (the pipeline reads its layers 9, 18 and 27), a 1+1-block transformer and a 4-level VAE
        (factor 8, 32 latent channels). Pass `height` and `width` (multiples of 16, e.g. 64): the
        default is 1024. `image=` makes it a reference-image editor; the inpaint pipeline takes the
        same components: `Flux2KleinInpaintPipeline.from_pipe(pipe)`.
    """
    tokenizer = make_qwen_tokenizer()  # no randomness
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_encoder = make_qwen3(tokenizer, hidden_size=_KLEIN_TEXT_HIDDEN, num_layers=_KLEIN_TEXT_LAYERS,
                                  causal_lm=True)
        # Klein has no guidance embedding: distilled models take no guidance input at all.
        transformer = _make_transformer(joint_attention_dim=3 * _KLEIN_TEXT_HIDDEN, guidance_embeds=False)
        vae = _make_vae()
    pipe = Flux2KleinPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**FLUX2_SCHEDULER_CONFIG),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
        is_distilled=is_distilled,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_flux2(seed: int = 0) -> Flux2Pipeline:
    """Build a tiny FLUX.2 [dev] pipeline with random weights.

    Args:
        seed (`int`, defaults to 0): seeds the weights; the caller's global RNG is left untouched.

    Returns:
        A `Flux2Pipeline` with the progress bar disabled: a 31-layer, 16-wide
        `Mistral3ForConditionalGeneration` (the pipeline reads its layers 10, 20 and 30), a 1+1-block
        guidance-embedded transformer and a 4-level VAE (factor 8, 32 latent channels). Its `tokenizer`
        is `make_mistral3_tokenizer()`, not a PixtralProcessor, so `caption_upsample_temperature` is
        not supported. Pass `height` and `width` (multiples of 16, e.g. 64); `image=` conditions on
        reference images.
    """
    tokenizer = make_mistral3_tokenizer()  # no randomness
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_encoder = make_mistral3(tokenizer)
        # [dev] is guidance-distilled: guidance_scale enters through the guidance embedding.
        transformer = _make_transformer(joint_attention_dim=3 * _MISTRAL_TEXT_HIDDEN, guidance_embeds=True)
        vae = _make_vae()
    pipe = Flux2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**FLUX2_SCHEDULER_CONFIG),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
