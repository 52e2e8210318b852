"""The model cache keys a pipeline by everything that decides what is loaded (issue 12, item 7): the
same single file under two configs is two pipelines, the same file declared the same way is one."""
import json
import shutil

import torch

from configs import load_models
from pipelines.model_cache import ModelCache
from pipelines.model_hashes import ModelHasher
from pipelines.plan import ModelRef


def test_one_file_under_two_configs_is_two_pipelines(catalogue_file, tmp_path):
    entry = next(m for m in load_models(catalogue_file) if m.id == "single-file")
    other_config = tmp_path / "config-v"
    shutil.copytree(entry.config, other_config)
    scheduler = other_config / "scheduler" / "scheduler_config.json"
    settings = json.loads(scheduler.read_text())
    settings["prediction_type"] = "v_prediction"                # the same weights, read as another model
    scheduler.write_text(json.dumps(settings))
    ref = ModelRef(id="single-file", family="sd15", source=entry.source,
                   hash=ModelHasher(tmp_path)(entry))
    twin = ModelRef(id="single-file-v", family="sd15", source=entry.source, hash=ref.hash)
    cache = ModelCache(tmp_path, torch.device("cpu"), torch.float32, capacity=4,
                       config_folders={"single-file": entry.config, "single-file-v": str(other_config)})
    first, second = cache.get(ref), cache.get(twin)
    assert first is not second and cache.loads == 2
    assert (first.scheduler.config.prediction_type, second.scheduler.config.prediction_type) == \
        ("epsilon", "v_prediction")
    same = ModelRef(id="single-file-again", family="sd15", source=entry.source, hash=ref.hash)
    cache.config_folders["single-file-again"] = entry.config
    assert cache.get(same) is first and cache.loads == 2      # declared the same way: one load


def test_a_file_of_another_family_than_declared_is_named_not_an_internal_error(catalogue_file, settings, tmp_path):
    import pytest

    from pipelines.demo_model import ensure_demo_model
    from pipelines.errors import AtelierError
    from pipelines.model_facts import checkpoint_family

    entry = next(m for m in load_models(catalogue_file) if m.id == "single-file")
    path = entry.source.removeprefix("file:")
    assert checkpoint_family(path) == "sd15"
    sdxl_config = ensure_demo_model(settings.models_dir / "demo", "demo-sdxl")
    cache = ModelCache(tmp_path, torch.device("cpu"), torch.float32, config_folders={"wrong": str(sdxl_config)})
    declared = ModelRef(id="wrong", family="sdxl", source=entry.source, hash="sha256:" + "0" * 64)
    with pytest.raises(AtelierError, match=r"Model 'wrong' is declared family = 'sdxl' in configs/models\.toml, but "
                                           r"its file tiny-sd15\.safetensors holds an sd15 checkpoint\.") as refused:
        cache.get(declared)
    assert (refused.value.code, refused.value.field) == ("family_mismatch", "model")


def test_caches_loading_at_once_in_one_process_all_load_real_weights(settings):
    """diffusers patches torch.nn while it loads; three caches (a worker's, a warm-up's, a test's) loading at
    the same moment must each get real weights and leave torch.nn as they found it."""
    import threading

    from pipelines.demo_model import ensure_demo_model

    ensure_demo_model(settings.models_dir / "demo", "demo-sd15")
    ref = ModelRef(id="demo-sd15", family="sd15", source="demo:demo-sd15", hash="sha256:" + "1" * 64)
    register_parameter = torch.nn.Module.register_parameter
    start, loaded = threading.Barrier(3), []

    def load():
        start.wait()
        try:
            unet = ModelCache(settings.models_dir, torch.device("cpu"), torch.float32).get(ref).unet
            loaded.append(next(unet.parameters()).detach().clone())
        except Exception as e:                     # noqa: BLE001 - the failure is what the test reports
            loaded.append(e)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert torch.nn.Module.register_parameter is register_parameter
    assert len(loaded) == 3 and all(isinstance(weights, torch.Tensor) for weights in loaded), loaded
    assert all(torch.equal(weights, loaded[0]) for weights in loaded)
