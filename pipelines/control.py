"""Control images and ControlNet models: canny edges with OpenCV, small random demo ControlNet, x4 upscaler
and x2 latent upscaler models built offline, and how ControlNets and upscalers load.

Like `pipelines.demo_model`, the demo models are seeded (same seed, same weights on every machine with
the same torch) and their outputs are noise, but every code path of the real pipelines runs.
"""

import os
import pathlib

import diffusers
import numpy as np
import PIL.Image
import torch
from diffusers import (
    AutoencoderKL,
    ControlNetModel,
    DDIMScheduler,
    DDPMScheduler,
    DiffusionPipeline,
    EulerDiscreteScheduler,
    StableDiffusionLatentUpscalePipeline,
    StableDiffusionUpscalePipeline,
    UNet2DConditionModel,
)

from pipelines.demo_model import _make_text_encoder, _make_tokenizer, _make_vae, ensure_demo_model, save_once
from pipelines.errors import AtelierError
from pipelines.families import FAMILIES
from pipelines.model_sources import ModelSources
from pipelines.plan import ModelRef


DEMO_CONTROLNET = "demo-controlnet-canny"
DEMO_UPSCALER = "demo-upscaler-x4"
DEMO_LATENT_UPSCALER = "demo-latent-upscaler-x2"

# Three stride-2 convolutions between four widths: the control image is brought down by 8, the SD VAE
# factor, to the latent size. A mismatch fails only at call time ("size of tensor a (8) must match").
_CONDITIONING_CHANNELS = (8, 16, 32, 32)


def canny(image: PIL.Image.Image, low: int = 100, high: int = 200) -> PIL.Image.Image:
    """Edges of `image` by OpenCV's Canny detector, as a ControlNet "canny" control image.

    Args:
        image (`PIL.Image.Image`): any mode; converted to RGB first.
        low (`int`, defaults to 100): hysteresis threshold below which a gradient is never an edge.
        high (`int`, defaults to 200): gradient above which a pixel is always an edge; pixels between
            `low` and `high` are edges only when connected to one. Lower thresholds find more edges.
            See Canny (1986), https://doi.org/10.1109/TPAMI.1986.4767851.

    Returns:
        An RGB image of the same size, white (255) edges on black (0), no other values.

    Raises:
        `ValueError`: unless `0 <= low <= high <= 255`.
    """
    if not 0 <= low <= high <= 255:
        raise ValueError(f"Canny thresholds must satisfy 0 <= low <= high <= 255, but got low={low}, high={high}.")
    import cv2  # lazily: only control-image steps need OpenCV

    edges = cv2.Canny(np.asarray(image.convert("RGB")), low, high)
    return PIL.Image.fromarray(np.stack([edges] * 3, axis=-1))


def build_demo_controlnet(unet: UNet2DConditionModel, seed: int = 0) -> ControlNetModel:
    """Build a ControlNet from `unet` whose control image visibly changes the output.

    `ControlNetModel.from_unet` copies the UNet's encoder, but its output convolutions ("zero convs")
    start at zero, which makes a fresh ControlNet an exact no-op, and the default initialisation of the
    conditioning embedding shrinks the control image's signal until the biases drown it (black and white
    control images then give the same hint). So the embedding's convolutions get variance-keeping
    weights and zero biases, and the zero convs random weights; see Zhang et al. (2023),
    https://arxiv.org/abs/2302.05543, for the architecture.

    Args:
        unet (`UNet2DConditionModel`): the SD1.5-style UNet to copy; its VAE must downsample by 8.
        seed (`int`, defaults to 0): seeds the new weights; the caller's global RNG is left untouched.

    Returns:
        A `ControlNetModel` in eval mode.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=_CONDITIONING_CHANNELS)
        with torch.no_grad():
            for module in controlnet.controlnet_cond_embedding.modules():
                if isinstance(module, torch.nn.Conv2d):
                    # 1.7 / sqrt(fan_in) keeps the signal's scale through SiLU (E[silu(x)^2] ~ 0.355).
                    module.weight.normal_(0.0, 1.7 / module.weight[0].numel() ** 0.5)
                    module.bias.zero_()
            for module in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
                module.weight.normal_(0.0, 0.2)
    return controlnet.eval()


def build_demo_upscaler(seed: int = 0) -> StableDiffusionUpscalePipeline:
    """Build a tiny pipeline of the Stable Diffusion x4 upscaler family with random weights.

    The latents are as large as the low-resolution image, which the UNet sees concatenated to them
    (4 latent + 3 image = 7 input channels), and a VAE that downsamples by 4 decodes them to 4 times the
    size. The noise added to the low-resolution image (`noise_level`, at most 350) reaches the UNet as a
    class label, so it needs `num_class_embeds` above that. Schedulers after
    `stabilityai/stable-diffusion-x4-upscaler`: v-prediction DDIM, DDPM for the image noise.

    Args:
        seed (`int`, defaults to 0): seeds the weights; the caller's global RNG is left untouched.

    Returns:
        A `StableDiffusionUpscalePipeline` with no safety checker or watermarker and the progress bar
        disabled. A 32x32 image comes back 128x128.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tokenizer = _make_tokenizer()
        text_encoder = _make_text_encoder(tokenizer)
        unet = UNet2DConditionModel(
            sample_size=32,
            in_channels=7,
            out_channels=4,
            block_out_channels=(32, 64),
            layers_per_block=1,
            # No attention at full latent size: 1024 tokens cost about 10 times as much per step.
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=text_encoder.config.hidden_size,
            attention_head_dim=8,
            use_linear_projection=True,
            num_class_embeds=1000,
            norm_num_groups=8,
        ).eval()
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            layers_per_block=1,
            down_block_types=["DownEncoderBlock2D"] * 3,
            up_block_types=["UpDecoderBlock2D"] * 3,
            block_out_channels=[8, 16, 16],
            norm_num_groups=8,
            sample_size=128,
            scaling_factor=0.08333,  # the x4 upscaler's; the pipeline warns about and rewrites any other
        ).eval()
    scheduler = DDIMScheduler(
        beta_start=0.0001,
        beta_end=0.02,
        beta_schedule="scaled_linear",
        prediction_type="v_prediction",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    low_res_scheduler = DDPMScheduler(beta_start=0.0001, beta_end=0.02, beta_schedule="scaled_linear")
    pipe = StableDiffusionUpscalePipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        low_res_scheduler=low_res_scheduler,
        scheduler=scheduler,
        max_noise_level=350,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_demo_latent_upscaler(seed: int = 0) -> StableDiffusionLatentUpscalePipeline:
    """Build a tiny pipeline of the Stable Diffusion x2 latent upscaler family
    (`stabilityai/sd-x2-latent-upscaler`) with random weights.

    An RGB image is encoded by an SD-style VAE (downsampling by 8, as SD1.5's, so SD latents fit too),
    the latents are enlarged 2x by nearest neighbour and concatenated to the noise (4 + 4 = 8 UNet input
    channels), and the UNet's 5th output channel, an unused variance, is dropped. The UNet is the
    k-diffusion kind (K blocks, Fourier embedding of `log(sigma) / 4`, no mid block) and is conditioned
    on the text encoder's last hidden states and, through `time_cond_proj_dim`, on 128 noise-level
    features plus the pooled text embedding. `KCrossAttnUpBlock2D` builds the first up block (no skip
    concatenated) only when its width equals the time embedding's, so `time_embedding_dim` must be 32
    (the default, twice the first width, fails at call time with a channel mismatch). With two levels
    any image side of at least 16 works; the pipeline first rounds sides down to multiples of 8.
    The pipeline preconditions the output itself, so the scheduler predicts the `sample`.

    Args:
        seed (`int`, defaults to 0): seeds the weights; the caller's global RNG is left untouched.

    Returns:
        A `StableDiffusionLatentUpscalePipeline` with the progress bar disabled. A 32x32 image comes
        back 64x64; call it with `guidance_scale=0` (the prompt is then ignored) or above 1.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tokenizer = _make_tokenizer()
        text_encoder = _make_text_encoder(tokenizer)
        hidden = text_encoder.config.hidden_size
        unet = UNet2DConditionModel(
            sample_size=16,
            in_channels=8,
            out_channels=5,
            block_out_channels=(32, 32),
            layers_per_block=1,
            down_block_types=("KDownBlock2D", "KCrossAttnDownBlock2D"),
            up_block_types=("KCrossAttnUpBlock2D", "KUpBlock2D"),
            mid_block_type=None,
            act_fn="gelu",
            norm_num_groups=None,
            resnet_time_scale_shift="scale_shift",
            conv_in_kernel=1,
            conv_out_kernel=1,
            cross_attention_dim=hidden,
            attention_head_dim=8,
            time_embedding_type="fourier",
            time_embedding_dim=32,
            timestep_post_act="gelu",
            time_cond_proj_dim=128 + hidden,
        ).eval()
        vae = _make_vae((8, 16, 16, 16), norm_groups=8)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", prediction_type="sample"
    )
    pipe = StableDiffusionLatentUpscalePipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def ensure_demo_controlnet(root: str | os.PathLike, unet_folder: str | os.PathLike) -> pathlib.Path:
    """Return `root/"demo-controlnet-canny"`, building and saving the demo ControlNet there the first time.

    The folder loads with `ControlNetModel.from_pretrained(path)`.

    Args:
        root (`str` or `os.PathLike`): folder that holds the models; created if missing.
        unet_folder (`str` or `os.PathLike`): a saved SD1.5 pipeline (e.g. `ensure_demo_model(root,
            "demo-sd15")`); the ControlNet copies its `unet` subfolder.

    Raises:
        `ValueError`: `unet_folder` has no `unet` subfolder, or the target holds something else.
    """
    unet_path = pathlib.Path(unet_folder) / "unet"
    if not (unet_path / "config.json").is_file():
        raise ValueError(f"{unet_folder} holds no saved UNet ({unet_path / 'config.json'} is missing).")

    def save(folder: pathlib.Path) -> None:
        unet = UNet2DConditionModel.from_pretrained(unet_path)
        build_demo_controlnet(unet).save_pretrained(folder)

    return save_once(pathlib.Path(root) / DEMO_CONTROLNET, "config.json", save)


def ensure_demo_upscaler(root: str | os.PathLike) -> pathlib.Path:
    """Return `root/"demo-upscaler-x4"`, building and saving the demo x4 upscaler there the first time.

    The folder loads with `DiffusionPipeline.from_pretrained(path, local_files_only=True)` as a
    `StableDiffusionUpscalePipeline`.

    Args:
        root (`str` or `os.PathLike`): folder that holds the models; created if missing.

    Raises:
        `ValueError`: the target holds something other than a saved pipeline.
    """
    def save(folder: pathlib.Path) -> None:
        build_demo_upscaler().save_pretrained(folder)

    return save_once(pathlib.Path(root) / DEMO_UPSCALER, "model_index.json", save)


def ensure_demo_latent_upscaler(root: str | os.PathLike) -> pathlib.Path:
    """Return `root/"demo-latent-upscaler-x2"`, building and saving the demo x2 latent upscaler there
    the first time.

    The folder loads with `DiffusionPipeline.from_pretrained(path, local_files_only=True)` as a
    `StableDiffusionLatentUpscalePipeline`.

    Args:
        root (`str` or `os.PathLike`): folder that holds the models; created if missing.

    Raises:
        `ValueError`: the target holds something other than a saved pipeline.
    """
    def save(folder: pathlib.Path) -> None:
        build_demo_latent_upscaler().save_pretrained(folder)

    return save_once(pathlib.Path(root) / DEMO_LATENT_UPSCALER, "model_index.json", save)


DEMO_UPSCALERS = {DEMO_UPSCALER: ensure_demo_upscaler, DEMO_LATENT_UPSCALER: ensure_demo_latent_upscaler}


def load_controlnet(control: ModelRef, sources: ModelSources, device: torch.device, dtype: torch.dtype,
                    base_family: str = "sd15") -> ControlNetModel:
    """The ControlNet `control` names for a model of `base_family` (a demo, built on first use, or a folder), on
    `device`, as the ControlNet class that family declares."""
    kind = control.source.split(":", 1)[0]
    family = FAMILIES[base_family]
    if kind == "demo" and control.id in family.control_demos:
        folder = ensure_demo_model(sources.demo_dir, control.id)
    elif kind == "demo":
        folder = ensure_demo_controlnet(sources.demo_dir, ensure_demo_model(sources.demo_dir, "demo-sd15"))
    elif kind == "folder":
        folder = sources.location(control)
    else:
        raise AtelierError(f"ControlNet {control.id!r}: only demo and folder: sources are supported.",
                           code="controlnet_source", field="control_model")
    return getattr(diffusers, family.controlnet_class).from_pretrained(folder, dtype=dtype).to(device)


def load_upscaler(model: ModelRef, sources: ModelSources, device: torch.device,
                  dtype: torch.dtype) -> DiffusionPipeline:
    """The upscaler pipeline `model` names (the diffusers x4 upscaler or x2 latent upscaler family; the folder's
    model_index.json says which), on `device`."""
    kind = model.source.split(":", 1)[0]
    if kind == "demo":
        build = DEMO_UPSCALERS.get(model.id)
        if build is None:
            raise AtelierError(f"No demo upscaler {model.id!r}; demo upscalers are {sorted(DEMO_UPSCALERS)}.",
                               code="upscaler_source", field="upscaler")
        folder = build(sources.demo_dir)
    elif kind == "folder":
        folder = sources.location(model)
    else:
        raise AtelierError(f"Upscaler {model.id!r}: only demo and folder: sources are supported.",
                           code="upscaler_source", field="upscaler")
    pipe = DiffusionPipeline.from_pretrained(folder, local_files_only=True, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
