"""A GGUF transformer named in the catalogue (issue 13, item 3): `source = "gguf:FILE"` with a config folder
holding the rest of the pipeline loads through the model cache and draws; its hash covers the GGUF file and the
folder; a file of another architecture is refused when the request is quoted, before anything runs."""
import pytest
import torch

from configs import CreditPrices, Limits, ModelEntry
from pipelines import Compiler, InvalidRequest, Txt2Img, WorkflowSpec
from pipelines.model_facts import ModelInspector
from pipelines.model_hashes import ModelHasher
from tests.gguf_files import write_gguf


@pytest.fixture(scope="module")
def flux_files(settings, tmp_path_factory):
    """(models folder, the demo FLUX.1 folder as the config folder, its transformer as flux.gguf, and the same
    weights declared as a qwen_image file)."""
    from diffusers import FluxTransformer2DModel

    from pipelines.demo_model import ensure_demo_model

    folder = ensure_demo_model(settings.models_dir / "demo", "demo-flux1")
    transformer = FluxTransformer2DModel.from_pretrained(folder, subfolder="transformer")
    root = tmp_path_factory.mktemp("gguf-models")
    write_gguf(transformer.state_dict(), root / "flux.gguf", "flux")
    write_gguf(transformer.state_dict(), root / "mislabelled.gguf", "qwen_image")
    return root, folder


def compiler_for(root, *entries):
    inspector = ModelInspector(ModelHasher(root))
    base = ModelEntry(id="demo-sd15", family="sd15", source="demo")
    return Compiler((base, *entries), (), Limits(), CreditPrices(), inspector.hash, model_facts=inspector)


def test_a_gguf_flux_transformer_loads_from_the_catalogue_and_draws(flux_files):
    from pipelines.backend import DiffusersBackend
    from pipelines.model_cache import ModelCache

    root, config = flux_files
    entry = ModelEntry(id="flux-q8", family="flux1", source="gguf:flux.gguf", config=str(config), width=64,
                       height=64, steps=2)
    plan = compiler_for(root, entry).compile(WorkflowSpec.single(Txt2Img(prompt="a lighthouse", model="flux-q8",
                                                                         seed=1)))
    step = plan.steps[0]
    assert step.model.hash.startswith("sha256:") and step.model.family == "flux1"
    cache = ModelCache(root, torch.device("cpu"), torch.float32, config_folders={"flux-q8": str(config)})
    pipe = cache.get(step.model)
    from diffusers.quantizers.gguf.utils import GGUFParameter

    assert any(isinstance(p, GGUFParameter) for p in pipe.transformer.parameters())
    image = DiffusersBackend(cache).txt2img(step, lambda *a, **k: None)[0]
    assert image.size == (64, 64) and len(set(image.getdata())) > 1


def test_the_hash_of_a_gguf_model_covers_its_config_folder(flux_files, tmp_path):
    import shutil

    root, config = flux_files
    copy = tmp_path / "config"
    shutil.copytree(config, copy)
    hasher = ModelHasher(root)
    first = hasher(ModelEntry(id="a", family="flux1", source="gguf:flux.gguf", config=str(copy)))
    (copy / "vae" / "config.json").write_text((copy / "vae" / "config.json").read_text().replace("}", ' }'))
    assert hasher(ModelEntry(id="a", family="flux1", source="gguf:flux.gguf", config=str(copy))) != first


def test_a_gguf_file_of_another_architecture_is_refused_when_quoted(flux_files):
    root, config = flux_files
    entry = ModelEntry(id="wrong", family="flux1", source="gguf:mislabelled.gguf", config=str(config))
    with pytest.raises(InvalidRequest) as refused:
        compiler_for(root, entry).compile(WorkflowSpec.single(Txt2Img(prompt="a fox", model="wrong")))
    problem = refused.value.problems[0]
    assert (problem.code, problem.field) == ("gguf_mismatch", "model")
    assert problem.message == ("Model 'wrong': mislabelled.gguf holds a 'qwen_image' GGUF; model wrong is declared "
                               "flux1, whose GGUF files are 'flux'.")
