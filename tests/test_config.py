"""Settings, catalogue and styles: the TOML files as shipped, and environment overrides."""
import pathlib

import pytest

from configs import load_models, load_settings, load_styles, needs_hub


def test_environment_overrides_the_toml():
    settings = load_settings(environ={
        "ATELIER_DATA_DIR": "/tmp/x", "ATELIER_PORT": "9001", "ATELIER_HOST": "0.0.0.0",
        "ATELIER_DATABASE_URL": "postgresql://u@h/db", "ATELIER_QUEUE_URL": "redis://h:6379/0",
        "ATELIER_BLOBS": "/srv/blobs", "ATELIER_DEVICE": "cpu", "ATELIER_WEB_ONLY": "1"})
    assert settings.data_dir == pathlib.Path("/tmp/x")
    assert (settings.port, settings.host, settings.device, settings.web_only) == (9001, "0.0.0.0", "cpu", True)
    assert settings.resolved_database_url == "postgresql://u@h/db"
    assert (settings.queue_url, settings.blobs_url) == ("redis://h:6379/0", "/srv/blobs")


def test_defaults_come_from_default_toml():
    settings = load_settings(environ={})
    assert (settings.host, settings.port) == ("127.0.0.1", 7860)
    assert settings.resolved_database_url == "sqlite:///data/atelier.db"
    assert settings.catalogue.name == "models.toml" and settings.catalogue.is_file()
    assert settings.limits.max_side == 2048


def test_spaces_server_variables_are_a_fallback():
    assert load_settings(environ={"GRADIO_SERVER_NAME": "0.0.0.0"}).host == "0.0.0.0"
    assert load_settings(environ={"GRADIO_SERVER_NAME": "0.0.0.0", "ATELIER_HOST": "10.0.0.1"}).host == "10.0.0.1"


def test_a_hosts_port_variable_is_the_last_fallback():
    assert load_settings(environ={"PORT": "8080"}).port == 8080
    assert load_settings(environ={"PORT": "8080", "GRADIO_SERVER_PORT": "7861"}).port == 7861
    assert load_settings(environ={"PORT": "8080", "GRADIO_SERVER_PORT": "7861", "ATELIER_PORT": "9000"}).port == 9000


def test_a_bad_value_names_its_variable():
    with pytest.raises(ValueError, match="ATELIER_PORT must be a int"):
        load_settings(environ={"ATELIER_PORT": "eighty"})
    with pytest.raises(ValueError, match="ATELIER_WEB_ONLY must be true or false"):
        load_settings(environ={"ATELIER_WEB_ONLY": "maybe"})


def test_shipped_catalogue_defaults_to_the_demo_model():
    models = load_models()
    assert models[0].is_demo and models[0].family == "sd15"
    assert {"sd15", "sdxl"} <= {m.family for m in models}
    assert not needs_hub(models)


def test_catalogue_rejects_bad_entries(tmp_path):
    path = tmp_path / "models.toml"
    from pipelines.families import FAMILIES

    path.write_text('[[model]]\nid = "x"\nfamily = "sd3"\nsource = "demo"\n')
    with pytest.raises(ValueError, match="model 'x' has family 'sd3'; expected one of sd15, sdxl, flux1"):
        FAMILIES.catalogue(load_models(path))
    path.write_text('[[model]]\nid = "x"\nfamily = "flux1"\nsource = "gguf:flux.gguf"\n')
    with pytest.raises(ValueError, match="gives a GGUF transformer; give it `config = <diffusers folder>`"):
        FAMILIES.catalogue(load_models(path))
    path.write_text('[[model]]\nid = "x"\nfamily = "sd15"\nsource = "gguf:x.gguf"\nconfig = "c"\n')
    with pytest.raises(ValueError, match="has a gguf source, which Stable Diffusion 1.5 models do not load from"):
        FAMILIES.catalogue(load_models(path))
    path.write_text('[[model]]\nid = "v"\nfamily = "svd"\nsource = "demo"\n')
    with pytest.raises(ValueError, match="names no model that draws; add a \\[\\[model\\]\\] of family 'sd15'"):
        FAMILIES.catalogue(load_models(path))
    path.write_text('[[model]]\nid = "x"\nfamily = "sd15"\nsource = "ftp://x"\n')
    with pytest.raises(ValueError, match="expected demo, folder:PATH"):
        load_models(path)


def test_at_least_eight_styles_each_with_a_prompt_slot():
    styles = load_styles()
    assert len(styles) >= 8
    assert len({s.name for s in styles}) == len(styles)
    cinematic = next(s for s in styles if s.name == "Cinematic")
    prompt, negative = cinematic.apply("a fox", "blurry")
    assert "a fox" in prompt and prompt != "a fox"
    assert negative.startswith("blurry, ")
