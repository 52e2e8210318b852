"""GGUF transformers: a tiny FLUX.1, Qwen-Image, Z-Image and Wan transformer is written to a Q8_0 GGUF file (with
the `gguf` package's own quantizer), loaded back through `pipelines.gguf.load_gguf_transformer` (diffusers'
`from_single_file` with its GGUF quantizer), and must compute what the original computes, within Q8_0's error,
while keeping its weights packed. Files of another architecture are refused from their header."""

import importlib
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub

import gguf
import pytest
import torch
from diffusers import (
    FluxTransformer2DModel,
    QwenImageTransformer2DModel,
    WanTransformer3DModel,
    ZImageTransformer2DModel,
)
from diffusers.quantizers.gguf.utils import GGUFLinear, GGUFParameter

from pipelines.gguf import GGUF_FAMILIES, check_gguf_architecture, gguf_architecture, load_gguf_transformer
from tests.gguf_files import original_keys, write_gguf

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Q8_0 stores each block of 32 weights as int8 with one fp16 scale: about 0.4% of a block's largest weight.
# Through two or three layers the outputs here move by about 0.5% of their largest value; allow 3%.
Q8_0_TOLERANCE = 0.03


def _inputs(family, config):
    """A fixed forward input for a transformer of `family` with `config`: a 4x4 grid of tokens (8x8 latents for
    the patchifying models) and 8 text tokens. Draws from the global RNG; callers seed it."""
    if family == "flux1":
        return {"hidden_states": torch.randn(1, 16, config.in_channels),
                "encoder_hidden_states": torch.randn(1, 8, config.joint_attention_dim),
                "pooled_projections": torch.randn(1, config.pooled_projection_dim), "timestep": torch.tensor([0.5]),
                "img_ids": torch.zeros(16, 3), "txt_ids": torch.zeros(8, 3),
                **({"guidance": torch.tensor([3.5])} if config.guidance_embeds else {})}
    if family == "qwen-image":
        return {"hidden_states": torch.randn(1, 16, config.in_channels),
                "encoder_hidden_states": torch.randn(1, 8, config.joint_attention_dim),
                "encoder_hidden_states_mask": torch.ones(1, 8), "timestep": torch.tensor([0.5]),
                "img_shapes": [(1, 4, 4)]}
    if family == "z-image":
        return {"x": [torch.randn(config.in_channels, 1, 8, 8)], "t": torch.tensor([0.5]),
                "cap_feats": [torch.randn(8, config.cap_feat_dim)]}
    return {"hidden_states": torch.randn(1, config.in_channels, 2, 8, 8), "timestep": torch.tensor([500]),
            "encoder_hidden_states": torch.randn(1, 8, config.text_dim)}


def _flux():
    """FLUX.1-dev's layout (double + single blocks, guidance embedding), 32 wide."""
    return FluxTransformer2DModel(patch_size=1, in_channels=32, num_layers=1, num_single_layers=1,
                                  attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                  pooled_projection_dim=32, guidance_embeds=True, axes_dims_rope=(4, 6, 6))


def _qwen_image():
    """Qwen-Image's MMDiT, one block, 32 wide, over 2x2 patches."""
    return QwenImageTransformer2DModel(patch_size=2, in_channels=32, out_channels=8, num_layers=1,
                                       attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                       axes_dims_rope=(4, 6, 6))


def _z_image():
    """Z-Image's single-stream DiT with its refiners, 64 wide."""
    return ZImageTransformer2DModel(all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=64, n_layers=1,
                                    n_refiner_layers=1, n_heads=2, n_kv_heads=2, cap_feat_dim=32,
                                    axes_dims=[8, 12, 12], axes_lens=[64, 32, 32])


def _wan():
    """Wan 2.x text-to-video DiT, one block, 32 wide."""
    return WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=16,
                                 out_channels=16, text_dim=32, freq_dim=256, ffn_dim=64, num_layers=1,
                                 rope_max_seq_len=32)


BUILDERS = {"flux1": (_flux, "flux"), "qwen-image": (_qwen_image, "qwen_image"), "z-image": (_z_image, "lumina2"),
            "wan22": (_wan, "wan")}

# (family, key layout). "original": the checkpoint names published GGUF files of that family carry, so diffusers'
# single-file converter runs; "diffusers": the model's own state-dict keys, which diffusers loads unconverted.
CASES = [("flux1", "diffusers"), ("qwen-image", "diffusers"), ("z-image", "original"), ("z-image", "diffusers"),
         ("wan22", "original"), ("wan22", "diffusers")]


def _forward(model, inputs):
    with torch.no_grad():
        out = model(**inputs, return_dict=False)[0]
    return torch.stack(out) if isinstance(out, list) else out  # Z-Image returns one tensor per image


class Case:
    """A tiny transformer, its saved config folder, its GGUF file and the module loaded back from that file."""

    def __init__(self, family, layout, root):
        build, self.arch = BUILDERS[family]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.model = build()
            self.inputs = _inputs(family, self.model.config)
        self.model.eval()
        self.family, self.layout = family, layout
        self.folder = root / "pipeline"
        self.model.save_pretrained(self.folder / "transformer")  # only its config.json is read
        state = self.model.state_dict()
        self.path = root / "transformer.gguf"
        self.written = write_gguf(original_keys(family, state) if layout == "original" else state, self.path,
                                  self.arch)
        self.loaded = load_gguf_transformer(family, self.path, self.folder, torch.float32, model_id=f"demo-{family}")


@pytest.fixture(scope="module", params=CASES, ids=[f"{f}-{layout}" for f, layout in CASES])
def case(request, tmp_path_factory):
    family, layout = request.param
    return Case(family, layout, tmp_path_factory.mktemp(f"{family}-{layout}"))


def test_file_declares_the_architecture_and_quantizes_linear_weights(case):
    assert gguf_architecture(case.path) == case.arch
    assert check_gguf_architecture(case.path, case.family) == case.arch
    kinds = set(case.written.values())
    assert "Q8_0" in kinds and "F32" in kinds  # linear weights packed, biases and norm scales kept
    reader = gguf.GGUFReader(case.path)
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types == case.written


def test_loaded_module_is_the_family_class_with_gguf_weights(case):
    loaded = case.loaded
    assert type(loaded) is type(case.model) and not loaded.training
    assert loaded.hf_quantizer is not None
    quantized = {name for name, p in loaded.named_parameters() if isinstance(p, GGUFParameter)}
    assert quantized, "no weight stayed GGUF-quantized"
    for name, module in loaded.named_modules():
        if isinstance(module, GGUFLinear):
            assert isinstance(module.weight, GGUFParameter), name
            assert module.weight.quant_type == gguf.GGMLQuantizationType.Q8_0, name
            assert module.weight.dtype == torch.uint8  # packed blocks, not dequantized floats
    if case.layout == "diffusers":
        # Every Q8_0 tensor stays packed, except in modules diffusers keeps in float32 (Wan's time embedder).
        keep = type(case.model)._keep_in_fp32_modules or []
        expected = {n for n, q in case.written.items() if q == "Q8_0" and not any(m in n.split(".") for m in keep)}
        assert quantized == expected
    # What is not quantized is stored in the compute dtype.
    assert all(p.dtype == torch.float32 for p in loaded.parameters() if not isinstance(p, GGUFParameter))


def test_loaded_module_computes_what_the_original_does(case):
    expected = _forward(case.model, case.inputs)
    got = _forward(case.loaded, case.inputs)
    assert got.shape == expected.shape and torch.isfinite(got).all()
    error = (got - expected).abs().max().item()
    assert error <= Q8_0_TOLERANCE * expected.abs().max().item(), error


def test_file_of_another_architecture_is_refused_before_loading(tmp_path):
    path = tmp_path / "transformer.gguf"
    write_gguf({"proj_out.weight": torch.randn(32, 32)}, path, "qwen_image")
    message = ("transformer.gguf holds a 'qwen_image' GGUF; model demo-flux is declared flux1, whose GGUF files are"
               " 'flux'")
    with pytest.raises(ValueError, match=message):
        check_gguf_architecture(path, "flux1", model_id="demo-flux")
    # The loader checks first, so the (here absent) config is never looked for.
    with pytest.raises(ValueError, match=message):
        load_gguf_transformer("flux1", path, tmp_path / "no-such-folder", torch.float32, model_id="demo-flux")
    with pytest.raises(ValueError, match="'wan'"):
        load_gguf_transformer("wan22", path, tmp_path, torch.float32)


def test_bad_inputs_raise_clear_value_errors(tmp_path):
    with pytest.raises(ValueError, match="supported for: flux1, flux1-fill, qwen-image, qwen-image-edit, z-image, "
                                         "wan22"):
        load_gguf_transformer("sdxl", tmp_path / "x.gguf", tmp_path, torch.float32)
    with pytest.raises(ValueError, match="does not exist"):
        gguf_architecture(tmp_path / "missing.gguf")
    not_gguf = tmp_path / "model.safetensors.gguf"
    not_gguf.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a readable GGUF file"):
        gguf_architecture(not_gguf)
    good = tmp_path / "t.gguf"
    write_gguf({"proj_out.weight": torch.randn(32, 32)}, good, "flux")
    with pytest.raises(ValueError, match="No transformer config"):
        load_gguf_transformer("flux1", good, tmp_path / "empty", torch.float32)
    assert set(GGUF_FAMILIES) == {"flux1", "flux1-fill", "qwen-image", "qwen-image-edit", "z-image", "wan22"}
    from pipelines.families import FAMILIES       # a family loads GGUF files when its sources say so, and only then

    assert set(GGUF_FAMILIES) == {f.name for f in FAMILIES if "gguf" in f.sources}


def test_weights_that_do_not_fit_the_config_raise_value_error(tmp_path):
    """A file for a differently sized model: diffusers' shape error comes back as a ValueError naming the file."""
    big = _flux()
    small = FluxTransformer2DModel(patch_size=1, in_channels=32, num_layers=1, num_single_layers=1,
                                   attention_head_dim=16, num_attention_heads=4, joint_attention_dim=32,
                                   pooled_projection_dim=32, guidance_embeds=True, axes_dims_rope=(4, 6, 6))
    small.save_pretrained(tmp_path / "pipeline" / "transformer")
    write_gguf(big.state_dict(), tmp_path / "flux.gguf", "flux")
    with pytest.raises(ValueError, match="flux.gguf does not load as a flux1 transformer"):
        load_gguf_transformer("flux1", tmp_path / "flux.gguf", tmp_path / "pipeline", torch.float32)


# The app's own demo pipelines, where their modules exist (other work adds them): their transformers must survive
# the same round trip, so a GGUF copy of a demo model behaves like the demo.
DEMOS = {"flux1": ("flux1", "build_flux1"), "qwen-image": ("qwen_image", "build_qwen_image"),
         "z-image": ("z_image", "build_z_image"), "wan22": ("wan22", "build_wan22")}


@pytest.mark.parametrize("family", list(DEMOS))
def test_demo_transformer_round_trips(family, tmp_path):
    module_name, builder = DEMOS[family]
    try:
        build = getattr(importlib.import_module(f"pipelines.demos.{module_name}"), builder)
    except (ImportError, AttributeError):
        pytest.skip(f"pipelines.demos.{module_name}.{builder} does not exist")
    transformer = build(seed=0).transformer.eval()
    transformer.save_pretrained(tmp_path / "pipeline" / "transformer")
    written = write_gguf(transformer.state_dict(), tmp_path / "t.gguf", BUILDERS[family][1])
    loaded = load_gguf_transformer(family, tmp_path / "t.gguf", tmp_path / "pipeline", torch.float32)
    assert "Q8_0" in written.values()
    assert any(isinstance(p, GGUFParameter) for p in loaded.parameters())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        inputs = _inputs(family, transformer.config)
    expected, got = _forward(transformer, inputs), _forward(loaded, inputs)
    assert (got - expected).abs().max().item() <= Q8_0_TOLERANCE * expected.abs().max().item()
