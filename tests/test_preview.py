"""Live previews (issue 14, item 1): each family's latents drawn by its cheap latent-to-RGB projection, packed
latents unpacked as diffusers packs them, a tiny decoder (TAESD) used where the catalogue gives one, and the
previews of a run spaced out so they cost little."""
import PIL.Image
import pytest
import torch
from diffusers import AutoencoderTiny, FluxPipeline, LTX2Pipeline, QwenImagePipeline
from diffusers.pipelines.flux2.pipeline_flux2_klein import Flux2KleinPipeline

from pipelines.families import FAMILIES
from pipelines.model_cache import ModelCache
from pipelines.plan import ModelRef
from pipelines.preview import PREVIEW_SIDE, Latents, Previewer, latent_picture, preview_image, project

# What each family's pipelines hand a step callback, for a 128 x 96 picture: (batch, channels, h, w) latents,
# 2x2 patches packed as tokens, or a video's latents (frames first for SVD).
H, W = 96, 128


def latents_of(family) -> torch.Tensor:
    channels = family.latent_rgb[0].channels
    if family.name in ("flux1", "flux1-fill", "flux2", "flux2-dev", "qwen-image", "qwen-image-edit"):
        return torch.randn(1, (H // 16) * (W // 16), channels * 4)
    if family.name == "ltx2":
        return torch.randn(1, 3 * (H // 32) * (W // 32), channels)        # 3 latent frames, 1x1 patches
    if family.name == "svd":
        return torch.randn(1, 5, channels, H // 8, W // 8)
    if family.media == "video":
        return torch.randn(1, channels, 5, H // 8, W // 8)
    return torch.randn(2, channels, H // 8, W // 8)


class LtxLike:
    """What the preview reads of an LTX-2 pipeline: its VAE's compression and the transformer's patch."""

    vae_spatial_compression_ratio = 32
    transformer_spatial_patch_size = 1


def ref(family: str, model_id: str = "m") -> ModelRef:
    return ModelRef(model_id, family, "demo", "sha256:" + "0" * 64)


@pytest.mark.parametrize("name", [f.name for f in FAMILIES])
def test_every_familys_latents_make_a_small_picture_of_the_pictures_shape(name):
    family = FAMILIES[name]
    pipe = LtxLike() if name == "ltx2" else None
    latents = Latents(latents_of(family), ref(name), W, H, pipe)
    picture = latent_picture(latents)
    assert picture is not None and picture.shape[0] == family.latent_rgb[0].channels
    assert picture.shape[1] / picture.shape[2] == pytest.approx(H / W)
    image = preview_image(latents)
    assert isinstance(image, PIL.Image.Image) and image.mode == "RGB" and image.size == (W, H)
    # Zero latents are the projection's bias alone: the family's own factors drew them, not the fallback.
    zero = preview_image(Latents(torch.zeros_like(latents.tensor), ref(name), W, H, pipe))
    bias = family.latent_rgb[0].bias
    assert zero.getpixel((5, 5)) == tuple(round((b + 1) / 2 * 255) for b in bias)


def test_a_projection_is_the_factors_times_the_channels_plus_the_bias_within_the_colour_range():
    sdxl = FAMILIES["sdxl"].latent_rgb[0]
    picture = torch.zeros(4, 2, 2)
    picture[1, 0, 0] = 1.0                                  # one channel lit at one pixel
    picture[0, 1, 1] = 50.0                                 # far out of range: clamped
    rgb = project(picture, (sdxl,))
    expected = [(f + b + 1) / 2 for f, b in zip(sdxl.factors[1], sdxl.bias)]
    assert rgb[:, 0, 0].tolist() == pytest.approx(expected, abs=1e-6)
    assert rgb.min() >= 0 and rgb.max() <= 1 and rgb[:, 1, 1].tolist() == [1.0, 1.0, 1.0]


def test_latents_no_projection_reads_are_stretched_to_their_range():
    picture = torch.arange(6 * 4 * 4, dtype=torch.float32).reshape(6, 4, 4)   # 6 channels: no family has that
    rgb = project(picture, FAMILIES["sd15"].latent_rgb)
    assert rgb.shape == (3, 4, 4) and rgb.amin(dim=(1, 2)).tolist() == [0, 0, 0]
    assert rgb.amax(dim=(1, 2)).tolist() == [1, 1, 1]


@pytest.mark.parametrize("packing", ["flux1", "qwen-image", "flux2"])
def test_packed_latents_are_unpacked_as_the_pipelines_pack_them(packing):
    channels = {"flux1": 16, "qwen-image": 16, "flux2": 32}[packing]
    unpacked = torch.randn(1, channels, H // 8, W // 8)
    if packing == "flux2":       # FLUX.2 patchifies 2x2 into 128 channels, then makes tokens of them
        packed = Flux2KleinPipeline._pack_latents(Flux2KleinPipeline._patchify_latents(unpacked))
    elif packing == "flux1":
        packed = FluxPipeline._pack_latents(unpacked, 1, channels, H // 8, W // 8)
    else:
        packed = QwenImagePipeline._pack_latents(unpacked, 1, channels, H // 8, W // 8)
    assert torch.equal(latent_picture(Latents(packed, ref(packing), W, H)), unpacked[0])


def test_packed_video_latents_show_their_middle_frame():
    video = torch.randn(1, 128, 5, H // 32, W // 32)          # LTX-2: (batch, channels, frames, h, w)
    packed = LTX2Pipeline._pack_latents(video, 1, 1)
    assert torch.equal(latent_picture(Latents(packed, ref("ltx2"), W, H, LtxLike())), video[0, :, 2])
    svd = torch.randn(1, 7, 4, H // 8, W // 8)                # SVD: frames first
    assert torch.equal(latent_picture(Latents(svd, ref("svd"), W, H)), svd[0, 3])


def test_a_big_picture_gives_a_preview_of_at_most_256_on_its_long_side():
    image = preview_image(Latents(torch.randn(1, 4, 1024 // 8, 640 // 8), ref("sd15"), 640, 1024))
    assert image.size == (160, PREVIEW_SIDE)


def test_a_tiny_decoder_draws_the_preview_when_the_catalogue_gives_one(tmp_path, caplog):
    cache = ModelCache(tmp_path, torch.device("cpu"), torch.float32,
                       preview_vaes={"with-taesd": "demo", "broken": "folder:nowhere"})
    decoder = cache.preview_decoder(ref("sd15", "with-taesd"))
    assert isinstance(decoder, AutoencoderTiny) and (tmp_path / "demo" / "demo-taesd" / "config.json").is_file()
    assert cache.preview_decoder(ref("sd15", "with-taesd")) is decoder                  # loaded once
    assert cache.preview_decoder(ref("sd15", "plain")) is None
    assert cache.preview_decoder(ref("sd15", "broken")) is None                        # logged, not raised
    assert "previews use the latent-to-RGB projection" in caplog.text

    latents = Latents(torch.randn(1, 4, 8, 8), ref("sd15", "with-taesd"), 64, 64)
    drawn, projected = preview_image(latents, decoder), preview_image(latents)
    assert drawn.size == projected.size == (64, 64)
    with torch.no_grad():
        expected = ((decoder.decode(latents.tensor).sample[0] + 1) / 2).clamp(0, 1)
    pixels = torch.tensor(list(drawn.getdata()), dtype=torch.float32).T.reshape(3, 64, 64) / 255
    assert torch.allclose(pixels, expected, atol=1 / 255 + 1e-6)
    assert list(drawn.getdata()) != list(projected.getdata())
    # A decoder of another channel count is not used: a 16-channel model's latents are projected.
    flux = Latents(torch.randn(1, 16, 8, 8), ref("z-image"), 64, 64)
    assert list(preview_image(flux, decoder).getdata()) == list(preview_image(flux).getdata())


def test_previews_are_spaced_by_the_interval():
    now = [100.0]
    previewer = Previewer(interval=0.5, clock=lambda: now[0])
    latents = Latents(torch.randn(1, 4, 8, 8), ref("sd15"), 64, 64)
    made = []
    for _ in range(12):                    # 12 steps of 1/8 s
        made.append(previewer.offer(latents) is not None)
        now[0] += 0.125
    assert made == [True, False, False, False] * 3
    assert previewer.made == 3


def test_what_a_preview_costs_its_caller_spaces_out_the_next():
    now = [0.0]
    previewer = Previewer(interval=0.5, share=0.05, clock=lambda: now[0])
    latents = Latents(torch.randn(1, 4, 8, 8), ref("sd15"), 64, 64)
    assert previewer.offer(latents) is not None
    previewer.charge(0.1)                      # storing it took 0.1 s: the next waits 0.1 / 0.05 = 2 s longer
    now[0] = 2.25
    assert previewer.offer(latents) is None
    now[0] = 2.5
    assert previewer.offer(latents) is not None and previewer.seconds == pytest.approx(0.1)
