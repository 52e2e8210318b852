"""Small random demo models of the two video families, built offline: Stable Video Diffusion (image to
video) and an AnimateDiff motion adapter (text to video on an SD1.5-family model).

Like `pipelines.demo_model` and `pipelines.control`, the models are seeded (same seed, same weights on
every machine with the same torch) and their frames are noise, but every code path of the real
pipelines runs: the CLIP image encoder, the spatio-temporal UNet, the temporal VAE decoder in chunks,
and the motion modules' attention across frames. The app and the tests use them for video (issue 5)
without downloaded weights. `load_svd` and `load_motion_adapter` read these families for the model cache.
"""

import logging
import os
import pathlib

import torch
from diffusers import (
    AnimateDiffPipeline,
    AutoencoderKLTemporalDecoder,
    DDIMScheduler,
    EulerDiscreteScheduler,
    MotionAdapter,
    StableDiffusionPipeline,
    StableVideoDiffusionPipeline,
    UNetSpatioTemporalConditionModel,
)
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

from pipelines.demo_model import ensure_demo_model
from pipelines.errors import AtelierError
from pipelines.model_sources import ModelSources
from pipelines.plan import ModelRef

logger = logging.getLogger(__name__)

DEMO_SVD = "demo-svd"
DEMO_MOTION_ADAPTER = "demo-motion-adapter"

# The SVD pipeline resizes every conditioning image to 224x224 for CLIP, so the vision encoder must
# take 224x224; a 32-pixel patch keeps it to 49 tokens.
_CLIP_IMAGE_SIZE = 224
_CLIP_PATCH_SIZE = 32

# SVD adds three ids (fps - 1, motion bucket id, noise augmentation strength), each embedded to this.
_ADDED_TIME_EMBED_DIM = 8

# The UNet of `pipelines.demo_model.build_sd15` with its defaults: a motion adapter inserts one motion
# module after each resnet, so its levels, widths and layers must be that UNet's.
_SD15_BLOCKS = (32, 64)
_SD15_LAYERS_PER_BLOCK = 1
_SD15_NORM_GROUPS = 8


def build_demo_svd(seed: int = 0) -> StableVideoDiffusionPipeline:
    """Build a tiny pipeline of the Stable Video Diffusion family with random weights.

    The input image reaches the video twice: its CLIP image embedding conditions the UNet's
    cross-attention, and its VAE latents (slightly noised) are concatenated to every frame's noise
    (4 + 4 = 8 UNet input channels). The VAE downsamples by 8, as SVD's does, so 64x64 frames have 8x8
    latents. `AutoencoderKLTemporalDecoder` has no `norm_num_groups` (GroupNorm(32) is fixed), so its
    widths are multiples of 32. The scheduler is the one shipped with
    `stabilityai/stable-video-diffusion-img2vid`: v-prediction Euler on Karras sigmas from 0.002 to 700.
    See Blattmann et al. (2023), https://arxiv.org/abs/2311.15127.

    Args:
        seed (`int`, defaults to 0): seeds the weights; the caller's global RNG is left untouched.

    Returns:
        A `StableVideoDiffusionPipeline` with the progress bar disabled and a default of 8 frames.
        Pass `height` and `width` when calling it (the default is 576x1024); sides should be multiples
        of 8. `decode_chunk_size` sets how many frames the VAE decodes at once.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        image_encoder = CLIPVisionModelWithProjection(
            CLIPVisionConfig(
                hidden_size=32,
                projection_dim=32,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=37,
                image_size=_CLIP_IMAGE_SIZE,
                patch_size=_CLIP_PATCH_SIZE,
            )
        ).eval()
        unet = UNetSpatioTemporalConditionModel(
            sample_size=8,
            in_channels=8,
            out_channels=4,
            block_out_channels=(32, 64),
            layers_per_block=1,
            down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
            up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
            cross_attention_dim=image_encoder.config.projection_dim,
            num_attention_heads=(2, 4),
            addition_time_embed_dim=_ADDED_TIME_EMBED_DIM,
            projection_class_embeddings_input_dim=3 * _ADDED_TIME_EMBED_DIM,
            num_frames=8,
        ).eval()
        vae = AutoencoderKLTemporalDecoder(
            down_block_types=("DownEncoderBlock2D",) * 4,
            block_out_channels=(32, 32, 32, 32),
            layers_per_block=1,
            latent_channels=4,
        ).eval()
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        interpolation_type="linear",
        prediction_type="v_prediction",
        sigma_max=700.0,
        sigma_min=0.002,
        steps_offset=1,
        timestep_spacing="leading",
        timestep_type="continuous",
        use_karras_sigmas=True,
    )
    feature_extractor = CLIPImageProcessor(crop_size=_CLIP_IMAGE_SIZE, size={"shortest_edge": _CLIP_IMAGE_SIZE})
    pipe = StableVideoDiffusionPipeline(
        vae=vae, image_encoder=image_encoder, unet=unet, scheduler=scheduler, feature_extractor=feature_extractor
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_demo_motion_adapter(seed: int = 0) -> MotionAdapter:
    """Build a motion adapter with random weights for the demo SD1.5 UNet
    (`pipelines.demo_model.build_sd15` with its defaults: widths (32, 64), one resnet per level).

    Each motion module attends across frames at one pixel position. Their output projections are
    random here, not zero as in a fresh training run, so the frames really influence each other (a
    zero projection would make the adapter an exact no-op). See Guo et al. (2023),
    https://arxiv.org/abs/2307.04725.

    Args:
        seed (`int`, defaults to 0): seeds the weights; the caller's global RNG is left untouched.

    Returns:
        A `MotionAdapter` in eval mode for up to 32 frames.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        adapter = MotionAdapter(
            block_out_channels=_SD15_BLOCKS,
            motion_layers_per_block=_SD15_LAYERS_PER_BLOCK,
            motion_norm_num_groups=_SD15_NORM_GROUPS,
            motion_num_attention_heads=4,
            motion_max_seq_length=32,
        )
    return adapter.eval()


def build_demo_animatediff(
    sd15_folder: str | os.PathLike, seed: int = 0, motion_adapter: MotionAdapter | None = None
) -> AnimateDiffPipeline:
    """Build an AnimateDiff text-to-video pipeline from a saved SD1.5 demo model and a motion adapter.

    The SD1.5 UNet becomes a `UNetMotionModel` with the adapter's motion modules; tokenizer, text
    encoder and VAE are the folder's. The scheduler is DDIM on linear betas with "linspace" spacing,
    the settings AnimateDiff's motion modules were trained with.

    Args:
        sd15_folder (`str` or `os.PathLike`): a saved SD1.5 pipeline whose UNet has the demo's widths,
            e.g. `ensure_demo_model(root, "demo-sd15")`.
        seed (`int`, defaults to 0): seeds a new adapter from `build_demo_motion_adapter`; ignored when
            `motion_adapter` is given. The caller's global RNG is left untouched.
        motion_adapter (`MotionAdapter`, *optional*): an adapter to use instead, e.g. one loaded from
            `ensure_demo_motion_adapter(root)`.

    Returns:
        An `AnimateDiffPipeline` with the progress bar disabled. Pass `height` and `width` (multiples
        of 8) and `num_frames` (at most 32) when calling it.

    Raises:
        `ValueError`: the folder holds no saved UNet, or its UNet does not fit the adapter (another
            width, depth or number of input channels).
    """
    sd15_folder = pathlib.Path(sd15_folder)
    if not (sd15_folder / "unet" / "config.json").is_file():
        raise ValueError(f"{sd15_folder} holds no saved SD1.5 pipeline ({sd15_folder / 'unet' / 'config.json'} is "
                         "missing).")
    adapter = motion_adapter if motion_adapter is not None else build_demo_motion_adapter(seed)
    base = StableDiffusionPipeline.from_pretrained(
        sd15_folder, local_files_only=True, safety_checker=None, requires_safety_checker=False
    )
    return animatediff_from(base, adapter)


def animatediff_from(base: StableDiffusionPipeline, adapter: MotionAdapter) -> AnimateDiffPipeline:
    """An AnimateDiff pipeline sharing `base`'s tokenizer, text encoder and VAE, whose UNet becomes a
    `UNetMotionModel` with `adapter`'s motion modules; the scheduler is DDIM on linear betas with
    "linspace" spacing, the settings AnimateDiff's motion modules were trained with.

    Raises:
        `ValueError`: `base`'s UNet does not fit the adapter (another width, depth or number of input
            channels), with what each has.
    """
    unet, motion = base.unet.config, adapter.config
    fits = (
        tuple(unet.block_out_channels) == tuple(motion.block_out_channels)
        and unet.layers_per_block == motion.motion_layers_per_block
        and unet.in_channels == 4
    )
    if not fits:
        raise ValueError(
            f"The model's UNet (widths {tuple(unet.block_out_channels)}, {unet.layers_per_block} layers per block, "
            f"{unet.in_channels} input channels) does not fit the motion adapter (widths "
            f"{tuple(motion.block_out_channels)}, {motion.motion_layers_per_block} layers per block); use a "
            "4-channel SD1.5 model of the adapter's widths."
        )
    pipe = AnimateDiffPipeline.from_pipe(base, motion_adapter=adapter)
    pipe.scheduler = DDIMScheduler.from_config(
        pipe.scheduler.config,
        beta_schedule="linear",
        clip_sample=False,
        timestep_spacing="linspace",
        steps_offset=1,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def ensure_demo_svd(models_dir: str | os.PathLike) -> pathlib.Path:
    """Return `models_dir/"demo-svd"`, building and saving the demo SVD pipeline there the first time.

    The folder loads with `StableVideoDiffusionPipeline.from_pretrained(path, local_files_only=True)`
    (or `DiffusionPipeline.from_pretrained`). It is saved into a temporary sibling and renamed into
    place, so a reader never sees a half written folder.

    Args:
        models_dir (`str` or `os.PathLike`): folder that holds the models; created if missing.

    Returns:
        The `pathlib.Path` of the saved pipeline.

    Raises:
        `ValueError`: the target holds something other than a saved pipeline (it is never deleted).
    """
    return ensure_demo_model(models_dir, DEMO_SVD)


def ensure_demo_motion_adapter(models_dir: str | os.PathLike) -> pathlib.Path:
    """Return `models_dir/"demo-motion-adapter"`, building and saving the demo motion adapter there the
    first time.

    The folder loads with `MotionAdapter.from_pretrained(path, local_files_only=True)`; pass the adapter
    to `build_demo_animatediff` with a saved SD1.5 demo model. It is saved into a temporary sibling and
    renamed into place, so a reader never sees a half written folder.

    Args:
        models_dir (`str` or `os.PathLike`): folder that holds the models; created if missing.

    Returns:
        The `pathlib.Path` of the saved adapter.

    Raises:
        `ValueError`: the target holds something other than a saved model (it is never deleted).
    """
    return ensure_demo_model(models_dir, DEMO_MOTION_ADAPTER)


def load_svd(model: ModelRef, sources: ModelSources, device: torch.device,
             dtype: torch.dtype) -> StableVideoDiffusionPipeline:
    """The Stable Video Diffusion pipeline `model` names (a demo, built on first use, or a folder), on `device`."""
    folder = sources.folder(model, ensure_demo_svd, "model", "video models and interpolators")
    try:
        pipe = StableVideoDiffusionPipeline.from_pretrained(folder, local_files_only=True, dtype=dtype)
    except (OSError, ValueError) as e:
        logger.exception("model cache: loading %s failed", model.id)
        raise AtelierError(f"Could not load model {model.id!r} from {model.source}: {e}",
                           code="model_load_failed", field="model") from e
    pipe.set_progress_bar_config(disable=True)
    if device.type == "cuda":
        # Feed-forward layers in chunks: a little slower, much less memory for long videos.
        pipe.unet.enable_forward_chunking()
    return pipe.to(device)


def load_motion_adapter(adapter: ModelRef, sources: ModelSources, device: torch.device,
                        dtype: torch.dtype) -> MotionAdapter:
    """The AnimateDiff motion adapter `adapter` names (a demo, built on first use, or a folder), on `device`."""
    folder = sources.folder(adapter, ensure_demo_motion_adapter, "motion_adapter", "video models and interpolators")
    return MotionAdapter.from_pretrained(folder, local_files_only=True, dtype=dtype).to(device)
