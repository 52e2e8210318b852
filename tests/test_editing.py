"""Editing through the real stack: uploads, img2img, inpaint, outpaint, upscale and chains of them,
with lineage from every output back to every input."""
import io
import json
import struct
import zlib

import numpy as np
import PIL.Image
import pytest

from pipelines import InvalidRequest
from pipelines.errors import AtelierError
from pipelines.spec import Img2Img, Inpaint, Link, LoadImage, LoadMask, Node, Outpaint, Txt2Img, Upscale, WorkflowSpec
from storage.artifacts import find_holding, lineage_of
from storage.models import Artifact, User


def png(image: PIL.Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def gradient(width=64, height=64) -> PIL.Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    y = np.linspace(255, 0, height, dtype=np.uint8)[:, None].repeat(width, 1)
    return PIL.Image.fromarray(np.stack([x, y, (x // 2 + y // 2)], -1), "RGB")


def square_mask(size=(64, 64), box=(20, 20, 44, 44)) -> PIL.Image.Image:
    mask = PIL.Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


def pixels(atelier, artifact_id) -> np.ndarray:
    artifact = Artifact.get_by_id(artifact_id)
    return np.asarray(PIL.Image.open(io.BytesIO(atelier.service.blobs.get(artifact.blob_key))).convert("RGB")).astype(int)


def run(atelier, owner, *nodes):
    service = atelier.service
    job = service.submit(owner, WorkflowSpec(nodes=tuple(nodes)))
    job = service.wait(owner, job.id, timeout=90)
    assert job.status == "succeeded", job.error
    return job


def load(node_id, artifact_id, mask=False):
    return Node(node_id, LoadMask(artifact_id=artifact_id) if mask else LoadImage(artifact_id=artifact_id))


def edge(node, output="image"):
    return Link(node, output)


@pytest.fixture(scope="module")
def source(atelier, owner):
    return atelier.service.upload(owner, png(gradient()))


@pytest.fixture(scope="module")
def mask(atelier, owner):
    return atelier.service.upload(owner, png(square_mask()))


def test_uploads_are_artifacts_of_kind_upload(atelier, owner, source):
    assert (find_holding(owner, source.id).kind, source.mime, source.width, source.height) == \
        ("upload", "image/png", 64, 64)
    assert atelier.service.upload(owner, png(gradient())).id == source.id      # same bytes, same artifact


def test_img2img_at_strength_0_returns_the_input(atelier, owner, source):
    job = run(atelier, owner, load("src", source.id),
              Node("1", Img2Img(prompt="a fox", strength=0.0), (("image", edge("src")),)))
    assert np.array_equal(pixels(atelier, job.artifact_ids[0]), np.asarray(gradient()).astype(int))
    parents, _ = lineage_of(find_holding(owner, job.artifact_ids[0]))
    assert parents == [{"artifact_id": source.id, "relation": "source"}]


def test_img2img_changes_the_image_reproducibly(atelier, owner, source):
    nodes = (load("src", source.id),
             Node("1", Img2Img(prompt="a fox", strength=0.7, seed=3, batch_size=2), (("image", edge("src")),)))
    first, second = run(atelier, owner, *nodes), run(atelier, owner, *nodes)
    assert first.artifact_ids == second.artifact_ids and len(first.artifact_ids) == 2
    assert np.abs(pixels(atelier, first.artifact_ids[0]) - np.asarray(gradient()).astype(int)).max() > 20
    outcome = atelier.artifacts.replay_outcome(owner, atelier.service.wait(
        owner, atelier.artifacts.replay(owner, first.artifact_ids[1]).id, timeout=60))
    assert outcome["identical"] is True


@pytest.mark.parametrize("model", ["demo-sd15", "demo-sd15-inpaint"])
def test_inpaint_leaves_unmasked_pixels_alone(atelier, owner, source, mask, model):
    job = run(atelier, owner, load("src", source.id), load("m", mask.id, mask=True),
              Node("1", Inpaint(prompt="a red ball", model=model, strength=1.0, mask_blur=0, seed=5),
                   (("image", edge("src")), ("mask", edge("m", "mask")))))
    result, original = pixels(atelier, job.artifact_ids[0]), np.asarray(gradient()).astype(int)
    inside = np.asarray(square_mask()) > 0
    assert np.array_equal(result[~inside], original[~inside])
    assert np.abs(result[inside] - original[inside]).max() > 20
    parents, _ = lineage_of(find_holding(owner, job.artifact_ids[0]))
    assert sorted((p["relation"], p["artifact_id"]) for p in parents) == [("mask", mask.id), ("source", source.id)]


def test_inpaint_feathers_inward_and_keeps_every_pixel_outside_the_mask(atelier, owner, source, mask):
    job = run(atelier, owner, load("src", source.id), load("m", mask.id, mask=True),
              Node("1", Inpaint(prompt="x", strength=1.0, mask_blur=3, masked_content="noise", seed=1),
                   (("image", edge("src")), ("mask", edge("m", "mask")))))
    result, original = pixels(atelier, job.artifact_ids[0]), np.asarray(gradient()).astype(int)
    inside = np.asarray(square_mask()) > 0
    assert np.array_equal(result[~inside], original[~inside])
    core = np.zeros((64, 64), bool)
    core[28:36, 28:36] = True                                # deep inside: fully repainted
    edge_ring = inside & ~np.pad(np.ones((20, 20), bool), 22)   # the mask's outer 2 px: a blend
    assert np.abs(result[core] - original[core]).max() > 20
    blend = np.abs(result[edge_ring] - original[edge_ring]).mean()
    assert 0 < blend < np.abs(result[core] - original[core]).mean()


def test_inpaint_only_masked_at_full_resolution(atelier, owner, mask):
    big = atelier.service.upload(owner, png(gradient(128, 96)))
    small_mask = atelier.service.upload(owner, png(square_mask((128, 96), (90, 60, 110, 80))))
    job = run(atelier, owner, load("src", big.id), load("m", small_mask.id, mask=True),
              Node("1", Inpaint(prompt="x", strength=1.0, mask_blur=0, full_res=True, full_res_padding=8,
                                masked_content="fill", seed=2),
                   (("image", edge("src")), ("mask", edge("m", "mask")))))
    result = pixels(atelier, job.artifact_ids[0])
    assert result.shape == (96, 128, 3)
    inside = np.asarray(square_mask((128, 96), (90, 60, 110, 80))) > 0
    assert np.array_equal(result[~inside], np.asarray(gradient(128, 96)).astype(int)[~inside])


def test_a_mask_of_another_size_is_resized_with_a_note(atelier, owner, source):
    other = atelier.service.upload(owner, png(square_mask((32, 32), (10, 10, 22, 22))))
    job = run(atelier, owner, load("src", source.id), load("m", other.id, mask=True),
              Node("1", Inpaint(prompt="x", mask_blur=0), (("image", edge("src")), ("mask", edge("m", "mask")))))
    assert json.loads(job.plan)["notes"] == ["The mask (32x32) was resized to the image (64x64)."]


def test_an_all_black_mask_is_refused_before_anything_runs(atelier, owner, source):
    black = atelier.service.upload(owner, png(PIL.Image.new("L", (64, 64), 0)))
    jobs_before = atelier.service.recent(owner, limit=1000)
    with pytest.raises(InvalidRequest, match="The mask is all black"):
        atelier.service.submit(owner, WorkflowSpec(nodes=(
            load("src", source.id), load("m", black.id, mask=True),
            Node("1", Inpaint(prompt="x"), (("image", edge("src")), ("mask", edge("m", "mask")))))))
    assert len(atelier.service.recent(owner, limit=1000)) == len(jobs_before)


def test_outpaint_extends_the_canvas_and_keeps_the_old_area(atelier, owner, source):
    job = run(atelier, owner, load("src", source.id),
              Node("1", Outpaint(prompt="more sky", left=16, top=13, feather=0, seed=4), (("image", edge("src")),)))
    result = pixels(atelier, job.artifact_ids[0])
    assert result.shape == (80, 80, 3)                     # 64+13 = 77 rounds up to 80, the 3 go on top
    assert np.array_equal(result[16:, 16:], np.asarray(gradient()).astype(int))
    assert np.abs(result[:16, :16] - result[16, 16]).max() > 0   # the new corner was painted, not copied


def test_upscale_with_lanczos_records_upscale_of(atelier, owner, source):
    job = run(atelier, owner, load("src", source.id), Node("1", Upscale(scale=2.5), (("image", edge("src")),)))
    artifact = Artifact.get_by_id(job.artifact_ids[0])
    assert (artifact.width, artifact.height) == (160, 160)
    assert lineage_of(find_holding(owner, artifact.id))[0] == [{"artifact_id": source.id, "relation": "upscale_of"}]


def test_hires_fix_chain_records_the_whole_lineage(atelier, owner):
    job = run(atelier, owner,
              Node("gen", Txt2Img(prompt="a castle", seed=8, batch_size=2)),
              Node("up", Upscale(scale=2.0), (("image", edge("gen", "images")),)),
              Node("fix", Img2Img(prompt="a castle", strength=0.4, seed=8), (("image", edge("up", "images")),)))
    assert len(job.artifact_ids) == 6                      # 2 generated, 2 upscaled, 2 refined
    generated, upscaled, refined = job.artifact_ids[:2], job.artifact_ids[2:4], job.artifact_ids[4:]
    assert Artifact.get_by_id(refined[1]).width == 128
    assert lineage_of(find_holding(owner, refined[1]))[0] == [{"artifact_id": upscaled[1], "relation": "source"}]
    assert lineage_of(find_holding(owner, upscaled[1]))[0] == [{"artifact_id": generated[1], "relation": "upscale_of"}]
    assert lineage_of(find_holding(owner, generated[0]))[1] == [{"artifact_id": upscaled[0], "relation": "upscale_of"}]


def test_a_tab_shows_only_the_final_pictures_of_a_hires_fix(atelier, owner):
    """A tab showed all six pictures of a batch-2 hires fix ("Seeds: 8, 9, 8, 9, 8, 9"); it shows the two
    refined ones, and names the others as intermediates, reachable through lineage."""
    from configs import load_models
    from ui.common import UIContext, job_result, shown_result

    job = run(atelier, owner,
              Node("gen", Txt2Img(prompt="a castle", seed=8, batch_size=2)),
              Node("up", Upscale(scale=2.0), (("image", edge("gen", "images")),)),
              Node("fix", Img2Img(prompt="a castle", strength=0.4, seed=8), (("image", edge("up", "images")),)))
    ctx = UIContext(service=atelier.service, artifacts=atelier.artifacts,
                    models=tuple(load_models(atelier.settings.catalogue)), styles=(), current_user=lambda r: owner)
    files, info = shown_result(ctx, owner, job)
    assert info["artifact_ids"] == job.artifact_ids[4:] and info["seeds"] == [8, 9]
    assert info["intermediate_ids"] == job.artifact_ids[:4]
    assert [caption for _, caption in files] == ["seed 8", "seed 9"]
    everything, _ = job_result(ctx, owner, job)          # what the API returns: every file
    assert len(everything) == 6
    # The Gallery's "My outputs" lists the finals too; "All" lists the rest as well.
    from storage.artifacts import gallery_query
    listed = {h.artifact_id for h in gallery_query(owner, "outputs")}
    assert set(job.artifact_ids[4:]) <= listed and not set(job.artifact_ids[:4]) & listed
    assert set(job.artifact_ids) <= {h.artifact_id for h in gallery_query(owner, "all")}


def test_graph_errors_name_the_node_and_the_fix(atelier, owner, source):
    service = atelier.service
    with pytest.raises(InvalidRequest, match="needs an input 'image'"):
        service.submit(owner, WorkflowSpec(nodes=(Node("1", Img2Img(prompt="x")),)))
    with pytest.raises(InvalidRequest, match="takes MASK; src.image is IMAGE"):
        service.submit(owner, WorkflowSpec(nodes=(load("src", source.id), Node("1", Inpaint(prompt="x"), (
            ("image", edge("src")), ("mask", edge("src")))))))
    with pytest.raises(InvalidRequest, match="cycle"):
        service.submit(owner, WorkflowSpec(nodes=(Node("a", Upscale(), (("image", edge("b", "images")),)),
                                                  Node("b", Upscale(), (("image", edge("a", "images")),)))))
    with pytest.raises(InvalidRequest, match="nothing_to_extend|extend at least one side"):
        service.submit(owner, WorkflowSpec(nodes=(load("src", source.id),
                                                  Node("1", Outpaint(), (("image", edge("src")),)))))


def test_someone_elses_image_is_not_found(atelier, owner, source):
    stranger = User.create(email="stranger@test")
    with pytest.raises(InvalidRequest, match="No image"):
        atelier.service.submit(stranger, WorkflowSpec(nodes=(load("src", source.id), Node(
            "1", Img2Img(prompt="x"), (("image", edge("src")),)))))


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but whose data is tiny."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


@pytest.mark.parametrize("data, words", [
    (b"", "is empty"),
    (b"GIF89a not really", "not an image"),
    (b"%PDF-1.7 a document", "not an image"),
    (bomb_png(30000, 30000), "decompression bomb"),
    (bomb_png(5000, 5000), "the limit is"),
    (png(PIL.Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)))[:6000],
     "damaged or truncated"),
])
def test_bad_uploads_are_refused_and_nothing_is_stored(atelier, owner, data, words):
    before = Artifact.select().count()
    with pytest.raises(AtelierError, match=words):
        atelier.service.upload(owner, data)
    assert Artifact.select().count() == before


def test_loras_from_the_prompt_and_the_list_change_the_image_and_are_recorded(atelier, owner):
    base = run(atelier, owner, Node("1", Txt2Img(prompt="a house", seed=21)))
    tagged = run(atelier, owner, Node("1", Txt2Img(prompt="a house, <lora:ink:0.8>", seed=21)))
    listed = run(atelier, owner, Node("1", Txt2Img(prompt="a house", seed=21, loras=(("ink", 0.8),))))
    assert tagged.artifact_ids == listed.artifact_ids != base.artifact_ids
    assert np.abs(pixels(atelier, tagged.artifact_ids[0]) - pixels(atelier, base.artifact_ids[0])).max() > 5
    from pipelines.infotext import parse_infotext
    from storage.artifacts import png_texts
    params = parse_infotext(png_texts(atelier.service.blobs.get(
        Artifact.get_by_id(tagged.artifact_ids[0]).blob_key))["parameters"])
    assert params["prompt"] == "a house, <lora:ink:0.8>"
    assert params["Lora hashes"].startswith("ink: ") and len(params["Lora hashes"]) == len("ink: ") + 12
    assert json.loads(tagged.plan)["steps"][0]["prompt"] == "a house"


def test_weight_zero_and_unloading_give_the_base_image(atelier, owner):
    base = run(atelier, owner, Node("1", Txt2Img(prompt="a tree", seed=22)))
    zero = run(atelier, owner, Node("1", Txt2Img(prompt="a tree <lora:ink:0>", seed=22)))
    both = run(atelier, owner, Node("1", Txt2Img(prompt="a tree <lora:ink:1> <lora:paper:0.5>", seed=22)))
    after = run(atelier, owner, Node("1", Txt2Img(prompt="a tree", seed=22)))
    assert np.array_equal(pixels(atelier, zero.artifact_ids[0]), pixels(atelier, base.artifact_ids[0]))
    assert both.artifact_ids != base.artifact_ids
    assert after.artifact_ids == base.artifact_ids            # the LoRAs were unloaded after the job


def test_an_embedding_is_used_by_its_name(atelier, owner):
    plain = run(atelier, owner, Node("1", Txt2Img(prompt="a photo of", seed=23)))
    embedded = run(atelier, owner, Node("1", Txt2Img(prompt="a photo of tinyemb", seed=23)))
    again = run(atelier, owner, Node("1", Txt2Img(prompt="a photo of", seed=23)))
    assert json.loads(embedded.plan)["steps"][0]["embeddings"][0][0] == "tinyemb"
    assert embedded.artifact_ids != plain.artifact_ids and again.artifact_ids == plain.artifact_ids


@pytest.mark.parametrize("params, words", [
    ({"prompt": "x <lora:nothere:1>"}, "LoRA 'nothere' not found; available: ['ink', 'paper']"),
    ({"prompt": "x <lora:ink:5>"}, "weight must be between -2 and 2"),
    ({"prompt": "x <lora:ink:abc>"}, "not a number"),
    ({"prompt": "x <lora:ink:1>", "loras": (("ink", 0.5),)}, "asked for twice"),
    ({"prompt": "x", "loras": (("pickled", 1.0),)}, "LoRA 'pickled' not found"),
])
def test_lora_mistakes_are_refused_up_front(atelier, owner, params, words):
    with pytest.raises(InvalidRequest, match=words.replace("[", r"\[").replace("]", r"\]")):
        atelier.service.submit(owner, WorkflowSpec.single(Txt2Img(**params)))


def outline() -> PIL.Image.Image:
    image = PIL.Image.new("RGB", (64, 64), (0, 0, 0))
    image.paste((255, 255, 255), (16, 16, 48, 48))
    image.paste((0, 0, 0), (20, 20, 44, 44))
    return image


def test_controlnet_changes_the_output_and_is_recorded(atelier, owner):
    from pipelines.spec import Canny
    guide = atelier.service.upload(owner, png(outline()))
    plain = run(atelier, owner, Node("1", Txt2Img(prompt="a window", seed=31)))
    nodes = (load("g", guide.id), Node("edges", Canny(low=50, high=150), (("image", edge("g")),)),
             Node("1", Txt2Img(prompt="a window", seed=31, control_model="demo-controlnet-canny"),
                  (("control", edge("edges", "images")),)))
    steered = run(atelier, owner, *nodes)
    edges_id, image_id = steered.artifact_ids
    edge_map = pixels(atelier, edges_id)
    assert set(np.unique(edge_map)) <= {0, 255} and edge_map.max() == 255
    assert np.abs(pixels(atelier, image_id) - pixels(atelier, plain.artifact_ids[0])).max() > 5
    assert lineage_of(find_holding(owner, image_id))[0] == [{"artifact_id": edges_id, "relation": "control"}]
    assert lineage_of(find_holding(owner, edges_id))[0] == [{"artifact_id": guide.id, "relation": "source"}]
    from pipelines.infotext import parse_infotext
    from storage.artifacts import png_texts
    params = parse_infotext(png_texts(atelier.service.blobs.get(Artifact.get_by_id(image_id).blob_key))["parameters"])
    assert params["ControlNet 0"].startswith("Model: demo-controlnet-canny [")
    zero = run(atelier, owner, *nodes[:2], Node("1", Txt2Img(prompt="a window", seed=31, control_scale=0.0,
                                                              control_model="demo-controlnet-canny"),
                                                (("control", edge("edges", "images")),)))
    assert np.abs(pixels(atelier, zero.artifact_ids[1]) - pixels(atelier, plain.artifact_ids[0])).max() <= 1


def test_controlnet_on_img2img(atelier, owner, source):
    from pipelines.spec import Canny
    guide = atelier.service.upload(owner, png(outline()))
    job = run(atelier, owner, load("src", source.id), load("g", guide.id),
              Node("edges", Canny(), (("image", edge("g")),)),
              Node("1", Img2Img(prompt="x", strength=0.8, seed=2, control_model="demo-controlnet-canny",
                                control_start=0.0, control_end=0.5),
                   (("image", edge("src")), ("control", edge("edges", "images")))))
    parents = lineage_of(find_holding(owner, job.artifact_ids[1]))[0]
    assert sorted(p["relation"] for p in parents) == ["control", "source"]


@pytest.mark.parametrize("params, words", [
    ({"control_model": "demo-controlnet-canny"}, "no control image is connected"),
    ({"model": "demo-controlnet-canny"}, "is a controlnet"),
])
def test_controlnet_mistakes(atelier, owner, params, words):
    with pytest.raises(InvalidRequest, match=words):
        atelier.service.submit(owner, WorkflowSpec.single(Txt2Img(prompt="x", **params)))


def test_a_controlnet_must_fit_the_model(atelier, owner):
    guide = atelier.service.upload(owner, png(outline()))
    with pytest.raises(InvalidRequest, match="is for sd15 models; 'demo-sdxl' is sdxl"):
        atelier.service.submit(owner, WorkflowSpec(nodes=(load("g", guide.id), Node(
            "1", Txt2Img(prompt="x", model="demo-sdxl", control_model="demo-controlnet-canny"),
            (("control", edge("g")),)))))


def test_an_upscaler_model_works_in_tiles_and_replays_identically(atelier, owner, source):
    job = run(atelier, owner, load("src", source.id),
              Node("1", Upscale(scale=3.0, upscaler="demo-upscaler-x4", tile_size=32, seed=6), (("image", edge("src")),)))
    artifact = Artifact.get_by_id(job.artifact_ids[0])
    assert (artifact.width, artifact.height) == (192, 192)
    assert lineage_of(find_holding(owner, artifact.id))[0] == [{"artifact_id": source.id, "relation": "upscale_of"}]
    from pipelines.infotext import parse_infotext
    from storage.artifacts import png_texts
    params = parse_infotext(png_texts(atelier.service.blobs.get(artifact.blob_key))["parameters"])
    assert (params["Postprocess upscaler"], params["Tile size"], params["Seed"]) == ("Demo-Upscaler-X4", "32", "6")
    replayed = atelier.service.wait(owner, atelier.artifacts.replay(owner, artifact.id).id, timeout=90)
    assert atelier.artifacts.replay_outcome(owner, replayed)["identical"] is True


def test_a_latent_upscaler_model_doubles_in_latent_space(atelier, owner, source):
    job = run(atelier, owner, load("src", source.id),
              Node("1", Upscale(scale=2.0, upscaler="demo-latent-upscaler-x2", tile_size=64, seed=1),
                   (("image", edge("src")),)))
    artifact = Artifact.get_by_id(job.artifact_ids[0])
    assert (artifact.width, artifact.height) == (128, 128)
    assert np.abs(pixels(atelier, job.artifact_ids[0])[::2, ::2] - np.asarray(gradient()).astype(int)).max() > 5


def test_unknown_upscaler_lists_the_choices(atelier, owner, source):
    with pytest.raises(InvalidRequest, match="upscaler must be one of \\['demo-latent-upscaler-x2', 'demo-upscaler-x4', "
                       "'lanczos'\\]"):
        atelier.service.submit(owner, WorkflowSpec(nodes=(load("src", source.id), Node(
            "1", Upscale(upscaler="esrgan"), (("image", edge("src")),)))))
