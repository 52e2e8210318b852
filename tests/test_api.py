"""End to end: the app served on 127.0.0.1, driven by gradio_client like any script would."""
import hashlib
import json
import pathlib
import re

import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from pipelines.infotext import parse_infotext


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_txt2img_with_only_a_prompt_returns_the_stored_pngs(client):
    files, info = client.predict(prompt="a lighthouse at dusk", api_name="/txt2img")
    assert set(info) >= {"job_id", "artifact_ids", "seeds", "plan_hash", "credits"}
    assert info["credits"] == 0
    assert len(files) == 1 and len(info["seeds"]) == 1
    path = files[0]["image"]
    assert sha256(path) == info["artifact_ids"][0]           # the stored file, byte for byte
    image = Image.open(path)
    assert image.format == "PNG" and image.size == (64, 64)  # the test catalogue's defaults
    params = parse_infotext(image.text["parameters"])
    assert params["prompt"] == "a lighthouse at dusk"
    assert params["Seed"] == str(info["seeds"][0])
    assert (params["Steps"], params["Size"], params["Model"]) == ("4", "64x64", "demo-sd15")
    assert json.loads(image.text["atelier"])["plan_hash"] == info["plan_hash"]


def test_txt2img_streams_live_previews_before_its_result(client):
    """gradio_client sees each new preview as an intermediate output, then the stored files as the result."""
    job = client.submit(prompt="a slow harbour", steps=80, width=256, height=256, seed=3, api_name="/txt2img")
    files, info = job.result(timeout=300)
    previews = [out for out in job.outputs()[:-1] if out[1].get("preview")]
    assert len(previews) >= 2, job.outputs()
    assert all(p_info["job_id"] == info["job_id"] and p_info["status"] == "running" for _, p_info in previews)
    assert all(re.search(r"step \d+ of 80", p_info["progress"]) for _, p_info in previews)
    shown = {sha256(p_files[0]["image"]) for p_files, _ in previews}
    assert len(shown) == len(previews)                                  # each one new, none repeated
    assert max(Image.open(p_files[0]["image"]).size[0] for p_files, _ in previews) <= 256
    assert sha256(files[0]["image"]) == info["artifact_ids"][0] and info["seeds"] == [3]


def test_txt2img_honours_every_parameter(client):
    files, info = client.predict(prompt="a fox", negative_prompt="blurry", model="demo-sd15", width=72, height=64,
                                 steps=3, cfg_scale=5.5, sampler="dpmpp_2m", schedule="karras", seed=99,
                                 batch_size=2, style="Cinematic", api_name="/txt2img")
    assert info["seeds"] == [99, 100]
    params = parse_infotext(Image.open(files[1]["image"]).text["parameters"])
    assert params["prompt"].startswith("cinematic still of a fox")
    assert params["negative_prompt"].startswith("blurry, ")
    assert (params["Sampler"], params["Schedule type"], params["CFG scale"]) == ("DPM++ 2M", "Karras", "5.5")
    assert (params["Seed"], params["Size"], params["Steps"]) == ("100", "72x64", "3")


@pytest.mark.parametrize("kwargs, words", [
    ({"prompt": ""}, "The prompt is empty"),
    ({"prompt": "x", "width": 100}, "width must be a multiple of 8"),
    ({"prompt": "x", "steps": 100000}, "steps must be between 1 and 150"),
    ({"prompt": "x", "model": "sd-unknown"}, "Unknown model 'sd-unknown'"),
    ({"prompt": "x", "width": 4096, "height": 4096}, "between 64 and 2048"),
])
def test_bad_requests_get_a_message_not_a_traceback(client, kwargs, words):
    with pytest.raises(AppError) as info:
        client.predict(api_name="/txt2img", **kwargs)
    assert words in str(info.value)
    assert "Traceback" not in str(info.value)


def test_submit_returns_at_once_and_job_status_follows_the_job(client, atelier, monkeypatch):
    """The runner is held at a gate, so the job cannot finish before /submit answers: /submit returns
    while the job is unfinished, /job_status shows it running, and succeeded once the gate opens."""
    import threading
    import uuid

    from tests.conftest import wait_until

    gate, entered = threading.Event(), threading.Event()
    run = atelier.runner.run

    def gated_run(*args, **kwargs):
        entered.set()
        assert gate.wait(300), "the test never opened the gate"
        return run(*args, **kwargs)

    monkeypatch.setattr(atelier.runner, "run", gated_run)
    prompt = f"an owl {uuid.uuid4().hex[:8]}"                # never served from an earlier job's outputs
    spec = {"version": 1, "nodes": [{"id": "a", "kind": "txt2img", "params": {"prompt": prompt, "seed": 5}}]}
    try:
        submitted = client.predict(spec=json.dumps(spec), api_name="/submit")
        job_id = submitted["job_id"]
        assert (set(submitted), submitted["credits"]) == ({"job_id", "plan_hash", "credits"}, 0)
        assert re.fullmatch("[0-9a-f]{32}", job_id) and re.fullmatch("[0-9a-f]{64}", submitted["plan_hash"])
        assert entered.wait(120), "the job never reached the runner"
        status = client.predict(job_id=job_id, api_name="/job_status")
        assert (status["status"], status["finished_at"], status["artifact_ids"]) == ("running", None, [])
    finally:
        gate.set()

    def finished():
        now = client.predict(job_id=job_id, api_name="/job_status")
        return now if now["finished_at"] is not None else None

    status = wait_until(finished, "the job to finish", timeout=300)
    assert (status["status"], status["plan_hash"]) == ("succeeded", submitted["plan_hash"]), status["error"]
    assert status["finished_at"] >= status["started_at"] >= status["created_at"]
    assert len(status["artifact_ids"]) == 1 and status["error"] == ""
    jobs = client.predict(api_name="/jobs")
    assert jobs[0] == {"job_id": job_id, "status": "succeeded", "progress": status["progress"],
                       "created_at": status["created_at"]}


def test_submit_refuses_a_bad_spec(client):
    with pytest.raises(AppError, match="Unknown node kind 'paint'"):
        client.predict(spec='{"nodes": [{"kind": "paint"}]}', api_name="/submit")


def test_cancel_job_through_the_api(client):
    spec = {"nodes": [{"kind": "txt2img", "params": {"prompt": "slow", "steps": 150, "width": 128,
                                                     "height": 128}}]}
    job_id = client.predict(spec=json.dumps(spec), api_name="/submit")["job_id"]
    client.predict(job_id=job_id, api_name="/cancel_job")
    for _ in range(400):
        status = client.predict(job_id=job_id, api_name="/job_status")
        if status["status"] != "queued" and status["status"] != "running":
            break
    assert status["status"] == "cancelled"


def test_artifact_info_and_replay(client):
    files, info = client.predict(prompt="a harbour", seed=31, batch_size=2, api_name="/txt2img")
    artifact_id = info["artifact_ids"][1]
    path, details = client.predict(artifact_id=artifact_id, api_name="/artifact_info")
    assert sha256(path) == artifact_id
    assert (details["kind"], details["mime"], details["seed"]) == ("image", "image/png", 32)
    assert details["size"] == len(open(path, "rb").read())
    assert details["recipe"]["plan_hash"] == info["plan_hash"]
    assert details["parents"] == [] and details["children"] == []
    replayed, outcome = client.predict(artifact_id=artifact_id, api_name="/replay")
    assert outcome["identical"] is True and outcome["artifact_id"] == artifact_id
    assert sha256(replayed) == artifact_id


@pytest.mark.parametrize("endpoint, name", [("/job_status", "job_id"), ("/cancel_job", "job_id"),
                                            ("/artifact_info", "artifact_id"), ("/replay", "artifact_id")])
def test_unknown_ids_are_not_found(client, endpoint, name):
    with pytest.raises(AppError, match="No (job|artifact) '0123456789abcdef'"):
        client.predict(api_name=endpoint, **{name: "0123456789abcdef"})


def test_health_route(atelier):
    import urllib.request
    with urllib.request.urlopen(atelier.url + "healthz") as response:
        assert json.load(response) == {"ok": True}


def write_png(path, image):
    image.save(path, format="PNG")
    return str(path)


@pytest.fixture(scope="module")
def picture(tmp_path_factory):
    import numpy as np
    folder = tmp_path_factory.mktemp("inputs")
    x = np.linspace(0, 255, 64, dtype=np.uint8)[None, :].repeat(64, 0)
    image = Image.fromarray(np.stack([x, x.T, 255 - x], -1), "RGB")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    return {"image": write_png(folder / "in.png", image), "mask": write_png(folder / "mask.png", mask),
            "text": str(folder / "notes.txt")}


def test_img2img_endpoint(client, picture):
    from gradio_client import handle_file
    files, info = client.predict(image=handle_file(picture["image"]), prompt="a fox", strength=0.0,
                                 api_name="/img2img")
    assert list(Image.open(files[0]["image"]).getdata()) == list(Image.open(picture["image"]).getdata())
    _, details = client.predict(artifact_id=info["artifact_ids"][0], api_name="/artifact_info")
    assert [p["relation"] for p in details["parents"]] == ["source"]
    upload = details["parents"][0]["artifact_id"]
    assert upload == sha256(picture["image"])                 # the upload is stored byte for byte
    _, upload_info = client.predict(artifact_id=upload, api_name="/artifact_info")
    assert upload_info["kind"] == "upload" and upload_info["children"][0]["relation"] == "source"


def test_inpaint_endpoint(client, picture):
    from gradio_client import handle_file
    files, info = client.predict(image=handle_file(picture["image"]), mask=handle_file(picture["mask"]),
                                 prompt="a red ball", strength=1.0, mask_blur=0, seed=3, api_name="/inpaint")
    import numpy as np
    result = np.asarray(Image.open(files[0]["image"]).convert("RGB"))
    original = np.asarray(Image.open(picture["image"]).convert("RGB"))
    outside = np.asarray(Image.open(picture["mask"])) == 0
    assert np.array_equal(result[outside], original[outside])
    _, details = client.predict(artifact_id=info["artifact_ids"][0], api_name="/artifact_info")
    assert sorted(p["relation"] for p in details["parents"]) == ["mask", "source"]
    params = parse_infotext(Image.open(files[0]["image"]).text["parameters"])
    assert (params["Denoising strength"], params["Mask blur"]) == ("1", "0")


def test_outpaint_and_upscale_endpoints(client, picture):
    from gradio_client import handle_file
    files, _ = client.predict(image=handle_file(picture["image"]), left=32, bottom=8, prompt="more",
                              api_name="/outpaint")
    assert Image.open(files[0]["image"]).size == (96, 72)
    files, info = client.predict(image=handle_file(picture["image"]), scale=3, api_name="/upscale")
    assert Image.open(files[0]["image"]).size == (192, 192)
    _, details = client.predict(artifact_id=info["artifact_ids"][0], api_name="/artifact_info")
    assert [p["relation"] for p in details["parents"]] == ["upscale_of"]


def test_a_file_that_is_not_an_image_is_refused(client, picture):
    from gradio_client import handle_file
    pathlib.Path(picture["text"]).write_text("hello, not a picture")
    with pytest.raises(AppError, match="not an image Atelier can read"):
        client.predict(image=handle_file(picture["text"]), api_name="/img2img")


def test_txt2img_with_a_controlnet(client, picture):
    from gradio_client import handle_file
    files, info = client.predict(prompt="a window", seed=5, control_image=handle_file(picture["mask"]),
                                 control_model="demo-controlnet-canny", canny_low=50, canny_high=150,
                                 api_name="/txt2img")
    assert len(files) == 2                                   # the edge map, then the picture
    edges = Image.open(files[0]["image"])
    assert set(edges.convert("L").getdata()) <= {0, 255}
    params = parse_infotext(Image.open(files[1]["image"]).text["parameters"])
    assert params["ControlNet 0"].startswith("Model: demo-controlnet-canny")
    _, details = client.predict(artifact_id=info["artifact_ids"][1], api_name="/artifact_info")
    assert details["parents"] == [{"artifact_id": info["artifact_ids"][0], "relation": "control"}]


def test_txt2img_with_hires_fix(client):
    files, info = client.predict(prompt="a tower", seed=9, hires_fix=True, hires_scale=2, hires_strength=0.4,
                                 api_name="/txt2img")
    assert [Image.open(f["image"]).size for f in files] == [(64, 64), (128, 128), (128, 128)]
    _, details = client.predict(artifact_id=info["artifact_ids"][2], api_name="/artifact_info")
    assert details["parents"] == [{"artifact_id": info["artifact_ids"][1], "relation": "source"}]
    params = parse_infotext(Image.open(files[2]["image"]).text["parameters"])
    assert (params["Denoising strength"], params["Seed"]) == ("0.4", "9")


def test_an_oversized_upload_is_refused(client, atelier, tmp_path):
    from gradio_client import handle_file
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + b"\0" * (atelier.settings.limits.max_upload_bytes + 1))
    limit = atelier.settings.limits.max_upload_bytes
    with pytest.raises(ValueError, match=f"exceeds the maximum file size of {limit} bytes"):
        client.predict(image=handle_file(str(big)), api_name="/img2img")     # gradio_client reads the app's limit
    import httpx                                                              # and the app refuses it itself
    with open(big, "rb") as f:
        answer = httpx.post(atelier.url + "gradio_api/upload", files={"files": ("big.png", f, "image/png")}, timeout=120)
    assert answer.status_code == 413, (answer.status_code, answer.text[:300])
