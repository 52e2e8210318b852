"""A tiny Gemma 3 tokenizer and text encoder built in code, for demo models whose text encoder is Gemma 3
(LTX-2), so they can be built and saved with no downloaded files.

The tokenizer is the real `GemmaTokenizerFast` class (tokenizers' BPE with byte fallback, "▁" for spaces, a BOS
token in front) over a vocabulary made here: Gemma's specials in Gemma's order, the 256 byte-fallback tokens, "▁"
and every printable ASCII character. Any text therefore tokenizes without unknowns: ASCII characters map to their
own ids, and everything else falls back to the ids of its UTF-8 bytes, so different prompts give different ids.
The text encoder is a randomly initialised `Gemma3ForConditionalGeneration` (the class the real LTX-2 checkpoint
ships) whose vocabulary and special ids match that tokenizer.
"""

import torch
from transformers import Gemma3Config, Gemma3ForConditionalGeneration, GemmaTokenizerFast

# Gemma's own first five ids (pad 0, eos 1, bos 2, unk 3, mask 4): Gemma3TextConfig's defaults assume them.
_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
# Gemma 3's chat and image markers. The pipeline never sends them, but Gemma3Config names an image token id and
# begin/end-of-image ids; giving them real ids inside the vocabulary keeps that config self-consistent.
_EXTRA_SPECIALS = ["<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>", "<image_soft_token>"]

# LTX-2's pipelines pad every prompt to `max_sequence_length` (1024 by default) whatever this says; it only bounds
# what the tokenizer reports to other callers.
MODEL_MAX_LENGTH = 1024


def make_gemma_tokenizer(model_max_length: int = MODEL_MAX_LENGTH) -> GemmaTokenizerFast:
    """Build a byte-complete Gemma tokenizer in code.

    Vocabulary, in id order: `<pad> <eos> <bos> <unk> <mask>`, the Gemma 3 chat/image markers, the 256 tokens
    `<0x00>`..`<0xFF>` that byte fallback emits, "▁" (Gemma's space) and the 95 printable ASCII characters. With no
    merges every character is one token, so the ids differ whenever the text differs.

    Args:
        model_max_length (`int`, defaults to 1024): what the tokenizer reports as its maximum length.

    Returns:
        A `GemmaTokenizerFast` that adds `<bos>` in front (as Gemma's does), pads on the left (as LTX-2 expects) and
        has 367 tokens.
    """
    vocab: dict[str, int] = {}
    for token in _SPECIALS + _EXTRA_SPECIALS:
        vocab[token] = len(vocab)
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    vocab["▁"] = len(vocab)
    for c in range(0x20 + 1, 0x7F):  # "!".."~"; the space is "▁" after normalisation
        vocab[chr(c)] = len(vocab)
    tokenizer = GemmaTokenizerFast(
        vocab=vocab,
        merges=[],
        model_max_length=model_max_length,
        padding_side="left",
        add_bos_token=True,
        add_eos_token=False,
        additional_special_tokens=_EXTRA_SPECIALS,
    )
    return tokenizer


def make_gemma3_text_encoder(
    tokenizer: GemmaTokenizerFast, hidden_size: int = 32, num_layers: int = 2
) -> Gemma3ForConditionalGeneration:
    """A randomly initialised `Gemma3ForConditionalGeneration` whose vocabulary and special ids match `tokenizer`.

    Uses the global RNG: seed it first (the demo builders do, inside `torch.random.fork_rng`).

    Args:
        tokenizer (`GemmaTokenizerFast`): from `make_gemma_tokenizer`.
        hidden_size (`int`, defaults to 32): width of the text model; LTX-2's connectors read it as
            `caption_channels`.
        num_layers (`int`, defaults to 2): text layers. LTX-2 stacks all `num_layers + 1` hidden states, so its
            connectors' `text_proj_in_factor` must be `num_layers + 1`.

    Returns:
        The model in eval mode. Its vision tower is the smallest SigLIP that fits Gemma 3's projector (8x8 images,
        4 patches, 4 image tokens); LTX-2 never feeds it images, but the class the real checkpoint uses has one.
    """
    ids = tokenizer.convert_tokens_to_ids
    text_config = {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden_size,
        "intermediate_size": 2 * hidden_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": hidden_size // 2,
        "query_pre_attn_scalar": hidden_size // 2,
        "max_position_embeddings": 2 * MODEL_MAX_LENGTH,
        # Real Gemma 3 alternates 5 sliding-window layers with one global one; with 2 layers keep one of each so
        # both attention kinds run.
        "sliding_window": 16,
        "layer_types": ["sliding_attention", "full_attention"][:num_layers] + ["full_attention"] * (num_layers - 2),
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
    }
    vision_config = {
        "model_type": "siglip_vision_model",
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": 8,
        "patch_size": 4,
    }
    config = Gemma3Config(
        text_config=text_config,
        vision_config=vision_config,
        mm_tokens_per_image=4,
        boi_token_index=ids("<start_of_image>"),
        eoi_token_index=ids("<end_of_image>"),
        image_token_index=ids("<image_soft_token>"),
    )
    model = Gemma3ForConditionalGeneration(config).eval()
    return model


def _smoke() -> None:  # pragma: no cover - a manual check, `python -m pipelines.demos.gemma`
    torch.manual_seed(0)
    tok = make_gemma_tokenizer()
    enc = make_gemma3_text_encoder(tok)
    ids = tok(["a cat", "ü"], padding="max_length", max_length=8, return_tensors="pt")
    print(ids.input_ids, tok.convert_ids_to_tokens(ids.input_ids[1]))
    out = enc(input_ids=ids.input_ids, attention_mask=ids.attention_mask, output_hidden_states=True)
    print(len(out.hidden_states), out.hidden_states[-1].shape)


if __name__ == "__main__":  # pragma: no cover
    _smoke()
