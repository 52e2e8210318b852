"""Qwen-style tokenizer, processor and tiny text encoders for the demo models of the families that
prompt through a Qwen language model: Qwen-Image (Qwen2.5-VL), Z-Image and FLUX.2 klein (Qwen3).

Everything is made in code, offline: the tokenizer is a byte-level BPE of the Qwen2 kind
(`Qwen2TokenizerFast`) whose merges are learnt here from the pipelines' own prompt templates, the
Qwen-Image-Edit processor is Qwen2-VL's minus its video half (`Qwen2VLImageOnlyProcessor`: the video
half needs torchvision), and the encoders are randomly initialised. Callers seed the weights (see
`demo_model.build_sd15`): the functions here draw from torch's global RNG and never seed it themselves.
"""

import collections

from transformers import (
    ProcessorMixin,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2TokenizerFast,
    Qwen2VLProcessor,
    Qwen3Config,
    Qwen3ForCausalLM,
    Qwen3Model,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.tokenization_utils_base import AddedToken

from pipelines.demo_model import bytes_to_unicode       # GPT-2's byte table; Qwen and Mistral's tekken use it too

# The special tokens of Qwen2.5 in Qwen's own order (their ids there are 151643...151656). The
# diffusers templates use <|im_start|>, <|im_end|> and, for Qwen-Image-Edit, <|vision_start|>,
# <|image_pad|> and <|vision_end|>; <|endoftext|> pads and ends text.
_SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)
# Qwen3's thinking markers: its chat template writes an empty <think></think> block when
# enable_thinking is False (FLUX.2 klein). They are ordinary added tokens in Qwen3, not special ones.
_THINK_TOKENS = ("<think>", "</think>")

# Text the merges are learnt from: the system prompts of diffusers' Qwen-Image templates (copied so the
# vocabulary does not change with the diffusers version) and the chat roles. Each of their words then
# becomes one token, as it is for Qwen's real tokenizer, so the template prefix the pipelines drop
# (`prompt_template_encode_start_idx`, 34 and 64 tokens) is exactly the system prompt. A byte-only
# vocabulary would make that prefix ~150 tokens: harmless, but the prompt embeddings would then start
# with the tail of the system prompt instead of the user's text.
_MERGE_CORPUS = (
    "system\nuser\nassistant\n",
    "Describe the image by detailing the color, shape, size, texture, quantity, text, spatial "
    "relationships of the objects and background:",
    "Describe the key features of the input image (color, shape, size, texture, objects, background), "
    "then explain how the user's text instruction should alter or modify the image. Generate a new image "
    "that meets the user's requirements while maintaining consistency with the original input where "
    "appropriate.",
)

# Qwen3's chat template reduced to what the pipelines use: plain string contents, the generation
# prompt and the enable_thinking switch (Z-Image passes True, FLUX.2 klein False).
QWEN3_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}"
    "{%- endif %}"
)

# Qwen's tokenizers keep this limit; the pipelines pass their own max_length (512 or 1024 + prefix).
_MODEL_MAX_LENGTH = 131072


def qwen_pre_tokenizer():
    """Qwen2's pre-tokenizer (its split regex, then byte-level), lent by a vocabulary-less tokenizer."""
    return Qwen2TokenizerFast(vocab={"<|endoftext|>": 0})._tokenizer.pre_tokenizer


def learn_merges(texts) -> list[tuple[str, str]]:
    """Byte-pair merges learnt from `texts` until each of their words is one token.

    The texts are split with `qwen_pre_tokenizer`, so the merges apply to exactly the pieces the
    tokenizer will see. Plain Python, not `tokenizers`' trainer, so the vocabulary cannot change with
    that library's version; ties go to the larger pair, so the result is the same on every run.
    """
    pre = qwen_pre_tokenizer()
    counts = collections.Counter(tuple(w) for text in texts for w, _ in pre.pre_tokenize_str(text))
    merges = []
    while True:
        pairs = collections.Counter()
        for word, n in counts.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += n
        if not pairs:
            return merges
        best = max(pairs, key=lambda p: (pairs[p], p))
        merges.append(best)
        merged = collections.Counter()
        for word, n in counts.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += n
        counts = merged


def make_qwen_tokenizer() -> Qwen2TokenizerFast:
    """A byte-level BPE tokenizer of the Qwen2 kind, built offline.

    Its vocabulary is the 256 byte symbols, then the merged words of the pipelines' system prompts,
    then Qwen's special tokens and Qwen3's <think> markers, in Qwen's order. Every byte has a token, so
    different prompts always give different ids. It carries `QWEN3_CHAT_TEMPLATE` for the pipelines
    that call `apply_chat_template` (Z-Image, FLUX.2 klein); Qwen-Image formats its template itself.

    Returns:
        A `Qwen2TokenizerFast` (in transformers 5 the same class as `Qwen2Tokenizer`) that pads on the
        right with <|endoftext|>, as Qwen's does.
    """
    chars = bytes_to_unicode()
    merges = learn_merges(_MERGE_CORPUS)
    vocab = {c: i for i, c in enumerate(chars)}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    for token in _SPECIAL_TOKENS + _THINK_TOKENS:
        vocab[token] = len(vocab)
    tokenizer = Qwen2TokenizerFast(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token="<|im_end|>",  # Qwen2.5-Instruct's and Qwen3's eos; <|endoftext|> pads
        pad_token="<|endoftext|>",
        additional_special_tokens=list(_SPECIAL_TOKENS[1:]),
        model_max_length=_MODEL_MAX_LENGTH,
        padding_side="right",
        chat_template=QWEN3_CHAT_TEMPLATE,
    )
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in _THINK_TOKENS])
    return tokenizer


class Qwen2VLImageOnlyProcessor(Qwen2VLProcessor):
    """`Qwen2VLProcessor` without its video processor: same text and image handling and saved files, less
    the video processor's.

    In transformers 5.23 `Qwen2VLProcessor` will not even be built without a video processor, and every
    video processor needs torchvision, which Atelier does not install. Qwen-Image-Edit only feeds
    images, so this subclass drops the video slot (the processor's sub-processors are read from
    `__init__`'s signature). diffusers records it in model_index.json under this module's path and,
    when loading, resolves it from `sys.modules`: import `pipelines.demos.qwen` before
    `from_pretrained` on a saved edit demo.
    """

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        # Qwen2VLProcessor.__init__ would pass video_processor=None to ProcessorMixin, which rejects it;
        # set what it sets and call ProcessorMixin directly.
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template, **kwargs)


def make_qwen_vl_processor(tokenizer: Qwen2TokenizerFast, max_pixels: int = 56 * 56) -> Qwen2VLImageOnlyProcessor:
    """The Qwen2-VL processor Qwen-Image-Edit calls: `tokenizer` plus Qwen2-VL's PIL image processor.

    The processor resizes each image to a multiple of 28 (14-pixel patches, merged 2x2) with at most
    `max_pixels` pixels and writes one <|image_pad|> per merged patch. Qwen's real limit is 12845056
    pixels; the default here, 56x56, gives 4 image tokens whatever the input, which keeps the vision
    tower cheap (Qwen-Image-Edit always hands it a ~1024x1024 image).

    Args:
        tokenizer (`Qwen2TokenizerFast`): from `make_qwen_tokenizer`.
        max_pixels (`int`, defaults to 3136): largest image the vision tower sees.

    Returns:
        A `Qwen2VLImageOnlyProcessor` (see there why not a plain `Qwen2VLProcessor`).
    """
    image_processor = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=max_pixels)
    return Qwen2VLImageOnlyProcessor(image_processor=image_processor, tokenizer=tokenizer)


def make_qwen2_5_vl(tokenizer: Qwen2TokenizerFast, hidden_size: int = 32) -> Qwen2_5_VLForConditionalGeneration:
    """A 2-layer Qwen2.5-VL (Qwen-Image's text encoder) with a 2-block vision tower.

    Qwen-Image reads the last hidden state, so `hidden_size` is the transformer's `joint_attention_dim`.
    Its special-token ids are `tokenizer`'s, so the edit pipeline's <|image_pad|> runs are replaced by
    the vision tower's features.

    Args:
        tokenizer (`Qwen2TokenizerFast`): from `make_qwen_tokenizer`; sets the vocabulary and token ids.
        hidden_size (`int`, defaults to 32): width of the language model and of the vision tower's output.
    """
    heads = 2
    head_dim = hidden_size // heads
    # M-RoPE splits each head's rotary half between time, height and width; Qwen2.5-VL-7B splits its 64
    # as 16/24/24. Keep about that ratio (16 wide heads: 2/3/3); the parts must sum to head_dim / 2.
    spatial = 3 * head_dim // 16
    mrope_section = [head_dim // 2 - 2 * spatial, spatial, spatial]
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": hidden_size,
            "intermediate_size": 2 * hidden_size,
            "num_hidden_layers": 2,
            "num_attention_heads": heads,
            "num_key_value_heads": 1,  # grouped-query attention, as the real model
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": mrope_section},
            "bos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "depth": 2,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_heads": 2,
            "out_hidden_size": hidden_size,
            # Block 0 attends within windows, block 1 over the whole image: both code paths run.
            "fullatt_block_indexes": [1],
        },
        image_token_id=tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tokenizer.convert_tokens_to_ids("<|video_pad|>"),
        vision_start_token_id=tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tokenizer.convert_tokens_to_ids("<|vision_end|>"),
    )
    return Qwen2_5_VLForConditionalGeneration(config).eval()


def make_qwen3(tokenizer: Qwen2TokenizerFast, hidden_size: int = 32, num_layers: int = 2,
               causal_lm: bool = False) -> Qwen3Model | Qwen3ForCausalLM:
    """A tiny Qwen3 (Z-Image's and FLUX.2 klein's text encoder) whose vocabulary is `tokenizer`'s.

    Args:
        tokenizer (`Qwen2TokenizerFast`): from `make_qwen_tokenizer`.
        hidden_size (`int`, defaults to 32): width; the pipelines feed hidden states, not logits.
        num_layers (`int`, defaults to 2): Z-Image reads `hidden_states[-2]`, so at least 2; FLUX.2 klein
            reads layers 9, 18 and 27 by default, so at least 27 there.
        causal_lm (`bool`, defaults to `False`): `Qwen3ForCausalLM` (FLUX.2 klein's class) instead of the
            bare `Qwen3Model` (Z-Image's).
    """
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=hidden_size // 2,  # Qwen3Config defaults to 128 whatever the width
        max_position_embeddings=4096,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,  # as Qwen3-4B; also halves the tiny model
    )
    return (Qwen3ForCausalLM if causal_lm else Qwen3Model)(config).eval()
