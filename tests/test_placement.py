"""Where a pipeline runs and in what precision (issue 13, item 5): the decisions, checked without a GPU. The CUDA
paths themselves (bf16, offload, tiling at full size) are run by bench/families.py on a lent GPU machine."""
import pytest
import torch

from pipelines.errors import AtelierError
from pipelines.placement import GIB, family_dtype, placement, tile_vae


def test_a_pipeline_that_fits_goes_on_the_gpu_and_one_that_does_not_is_offloaded():
    parts = {"transformer": 24 * GIB, "text_encoder": 9 * GIB, "vae": GIB // 4}
    assert placement("flux", parts, free=80 * GIB, offload=False) == "gpu"
    assert placement("flux", parts, free=80 * GIB, offload=True) == "offload"          # the catalogue asks
    assert placement("flux", parts, free=32 * GIB, offload=False) == "offload"         # 33 GiB of weights


def test_a_pipeline_whose_largest_part_cannot_fit_says_what_to_do():
    with pytest.raises(AtelierError) as refused:
        placement("qwen", {"transformer": 40 * GIB, "text_encoder": 16 * GIB}, free=24 * GIB, offload=True)
    assert (refused.value.code, refused.value.field) == ("model_too_large", "model")
    assert refused.value.message == ("Model 'qwen' does not fit on this GPU: its transformer alone takes 40.0 GiB "
                                     "and 24.0 GiB are free. Use a GGUF (quantized) file of its transformer, a "
                                     "smaller variant, or a GPU with more memory.")


def test_flow_families_run_in_bfloat16_on_a_gpu_and_everything_in_float32_on_the_cpu(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert family_dtype("flux1", cpu, torch.float32) == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert family_dtype("flux1", cuda, torch.float16) == torch.bfloat16
    assert family_dtype("wan22", cuda, torch.float16) == torch.bfloat16
    assert family_dtype("sd15", cuda, torch.float16) == torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)       # an older GPU
    assert family_dtype("flux1", cuda, torch.float16) == torch.float16


def test_the_vae_tiles_large_outputs_of_the_new_families_only():
    from pipelines.demo_model import build_sd15
    from pipelines.demos.flux1 import build_flux1

    flux, sd15 = build_flux1(), build_sd15()
    tile_vae(flux, "flux1", 2048, 2048)
    assert flux.vae.use_tiling is True
    tile_vae(flux, "flux1", 1024, 1024)
    assert flux.vae.use_tiling is False
    tile_vae(sd15, "sd15", 2048, 2048)                  # its stored large images replay as they were made
    assert sd15.vae.use_tiling is False
