"""T5-style tokenizer and tiny T5 / UMT5 text encoders for the demo models of the families that prompt
through T5: FLUX.1 and Stable Diffusion 3.5 (T5 v1.1 XXL, `T5EncoderModel`) and Wan 2.2 (UMT5 XXL,
`UMT5EncoderModel`).

Everything is made in code, offline. The tokenizer is a `T5TokenizerFast` (in transformers 5 the same class
as `T5Tokenizer`) over a character-level Unigram vocabulary, and the encoders are randomly initialised with
a vocabulary that matches it. Callers seed the weights (see `demo_model.build_sd15`): the functions here
draw from torch's global RNG and never seed it themselves.
"""

from transformers import T5Config, T5EncoderModel, T5TokenizerFast, UMT5Config, UMT5EncoderModel

# T5's and UMT5's own special ids: <pad> 0 (also the decoder start), </s> 1, <unk> 2.
_SPECIALS = ("<pad>", "</s>", "<unk>")
# SentencePiece's word-start marker: the T5 tokenizer's Metaspace pre-tokenizer puts it before each word.
_WORD_START = "\u2581"
# Every character of one or two UTF-8 bytes (Latin, Greek, Cyrillic, Hebrew, Arabic, ...) except the
# controls and whitespace (the pre-tokenizer splits on whitespace, so none ever reaches the model). Why
# characters and not bytes: transformers 5 rebuilds a saved T5 tokenizer from its vocabulary with
# `byte_fallback=False`, so the `<0xNN>` byte pieces of a byte-fallback Unigram stop working after
# `save_pretrained` + `from_pretrained` (a CJK prompt then becomes <unk>). Characters outside this set
# (CJK, emoji) become <unk> here too, as they do in T5 v1.1's real vocabulary; consecutive ones fuse into
# one <unk>.
_CHARS = tuple(chr(c) for c in range(0x21, 0x800) if not (0x7F <= c <= 0x9F) and not chr(c).isspace())
# The longest prompt the pipelines tokenize: FLUX.1's and Wan's max_sequence_length (SD3 uses 256).
MODEL_MAX_LENGTH = 512


def make_t5_tokenizer() -> T5TokenizerFast:
    """A character-level T5 tokenizer, built offline.

    Its Unigram vocabulary is <pad>, </s>, <unk> (ids 0, 1, 2, as in T5 and UMT5), the word-start marker
    "▁" and then one piece per character of `_CHARS`, each scored alike: with only single-character
    pieces every word has exactly one segmentation, so each character of a prompt is its own token and
    different prompts give different ids. The tokenizer appends </s>, pads with <pad> on the right, and
    keeps no <extra_id_N> sentinels (the encoders never see them).

    Returns:
        A `T5TokenizerFast` with `model_max_length` 512 whose `save_pretrained` folder loads back with
        `T5TokenizerFast.from_pretrained` or `AutoTokenizer.from_pretrained` into the same ids.
    """
    vocab = [(token, 0.0) for token in _SPECIALS]
    vocab.append((_WORD_START, -1.0))
    vocab += [(c, -1.0) for c in _CHARS]
    # model_max_length must be set, or a pipeline that pads to it would pad to about 1e30 tokens.
    return T5TokenizerFast(vocab=vocab, extra_ids=0, model_max_length=MODEL_MAX_LENGTH)


def _config_kwargs(tokenizer: T5TokenizerFast, d_model: int, num_layers: int) -> dict:
    """The T5/UMT5 config shared by both encoders: T5 v1.1's gated-GELU feed-forward and relative
    position buckets, 4 heads, and the tokenizer's vocabulary size and special ids."""
    return dict(
        vocab_size=len(tokenizer),
        d_model=d_model,
        d_kv=d_model // 4,
        d_ff=2 * d_model,
        num_layers=num_layers,
        num_heads=4,
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,
        feed_forward_proj="gated-gelu",  # T5 v1.1 and UMT5 (FLUX, SD3 and Wan use these, not T5 1.0's relu)
        is_encoder_decoder=False,  # an encoder only, as the pipelines load it
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )


def make_t5_encoder(tokenizer: T5TokenizerFast, d_model: int = 32, num_layers: int = 2) -> T5EncoderModel:
    """A tiny `T5EncoderModel` (T5 v1.1 layout) whose vocabulary and special ids match `tokenizer`.

    Args:
        tokenizer: the tokenizer it reads (`make_t5_tokenizer()`).
        d_model (`int`, defaults to 32): hidden size: the pipeline's `joint_attention_dim`. SD3 pads its
            concatenated CLIP hidden states up to this width, so it must be at least their sum there.
        num_layers (`int`, defaults to 2): encoder blocks.

    Returns:
        The encoder in eval mode, its weights drawn from torch's global RNG.
    """
    return T5EncoderModel(T5Config(**_config_kwargs(tokenizer, d_model, num_layers))).eval()


def make_umt5_encoder(tokenizer: T5TokenizerFast, d_model: int = 32, num_layers: int = 2) -> UMT5EncoderModel:
    """A tiny `UMT5EncoderModel` (Wan's text encoder: every layer has its own relative position bias)
    whose vocabulary and special ids match `tokenizer`.

    Args:
        tokenizer: the tokenizer it reads (`make_t5_tokenizer()`).
        d_model (`int`, defaults to 32): hidden size: the transformer's `text_dim`.
        num_layers (`int`, defaults to 2): encoder blocks.

    Returns:
        The encoder in eval mode, its weights drawn from torch's global RNG.
    """
    return UMT5EncoderModel(UMT5Config(**_config_kwargs(tokenizer, d_model, num_layers))).eval()
