"""AUTOMATIC1111's REST API (web/a1111.py), driven by the `webuiapi` client from PyPI and by plain HTTP against
the served app: images are the stored artifacts, samplers are read in A1111's spelling, bad input is a 422
that says why, and a caller reaches only their own jobs."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import threading

import httpx
import PIL.Image
import pytest
import webuiapi

from tests.conftest import wait_until


def client_for(app, **auth) -> webuiapi.WebUIApi:
    return webuiapi.WebUIApi(baseurl=app.url + "sdapi/v1", sampler="Euler a", steps=3, **auth)


def png_bytes(image: PIL.Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_webuiapi_txt2img_answers_the_stored_artifacts(atelier, owner):
    api = client_for(atelier)
    result = api.txt2img(prompt="a red fox", negative_prompt="blurry", width=64, height=64, steps=3, seed=41,
                         batch_size=2, sampler_name="DPM++ 2M Karras", cfg_scale=5.0)
    assert len(result.images) == 2
    raw = result.json["images"]
    info = result.info
    assert [hashlib.sha256(base64.b64decode(b)).hexdigest() for b in raw] == info["artifact_ids"]
    assert info["all_seeds"] == [41, 42]
    assert "Negative prompt: blurry" in info["infotexts"][0]
    # A1111's combined label was read as a sampler and a schedule, and the plan records our names.
    plan = json.loads(atelier.service.job(owner, info["job_id"]).plan)
    assert '"dpmpp_2m"' in json.dumps(plan) and '"karras"' in json.dumps(plan)
    assert result.images[0].size == (64, 64)


def test_webuiapi_img2img_with_a_mask_inpaints(atelier, owner):
    api = client_for(atelier)
    start = PIL.Image.new("RGB", (64, 64), (30, 120, 200))
    mask = PIL.Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    result = api.img2img(images=[start], mask_image=mask, prompt="a yellow circle", steps=3, seed=5,
                         denoising_strength=0.9, inpainting_fill=1, inpaint_full_res=False, width=64, height=64)
    info = result.info
    assert [hashlib.sha256(base64.b64decode(b)).hexdigest() for b in result.json["images"]] == info["artifact_ids"]
    plan = json.loads(atelier.service.job(owner, info["job_id"]).plan)
    assert '"inpaint"' in json.dumps(plan)
    # Lineage: the image made comes from the uploaded start image.
    start_id = hashlib.sha256(png_bytes(start)).hexdigest()
    assert start_id in json.dumps(plan)


def test_webuiapi_lists_models_and_samplers(atelier):
    api = client_for(atelier)
    titles = [m["title"] for m in api.get_sd_models()]
    assert titles == list(atelier.service.compiler.choices("model"))
    names = [s["name"] for s in api.get_samplers()]
    assert {"Euler a", "DPM++ 2M", "DDIM", "UniPC"} <= set(names)
    assert len(names) == len(set(names))


def test_webuiapi_interrupt_cancels_the_callers_running_job(atelier, owner):
    api = client_for(atelier)
    answer = {}
    thread = threading.Thread(target=lambda: answer.update(
        r=httpx.post(atelier.url + "sdapi/v1/txt2img", json={"prompt": "a slow one", "steps": 150, "width": 128,
                                                              "height": 128}, timeout=600)))
    thread.start()
    wait_until(lambda: httpx.get(atelier.url + "sdapi/v1/progress", timeout=30).json()["state"]["sampling_step"] > 0,
               "the long job to start denoising", timeout=300)
    progress = httpx.get(atelier.url + "sdapi/v1/progress", timeout=30).json()
    assert 0 < progress["progress"] < 1 and progress["state"]["sampling_steps"] == 150
    api.interrupt()
    thread.join(300)
    assert answer["r"].status_code == 422 and "interrupted" in answer["r"].json()["detail"]
    assert atelier.service.job(owner, progress["current_task"]).status == "cancelled"


@pytest.mark.parametrize("body, field", [
    ({"prompt": "x", "no_such_field": 1}, "no_such_field"),
    ({"prompt": "x", "steps": "many"}, "steps"),
])
def test_a1111_refuses_fields_it_does_not_have(atelier, body, field):
    r = httpx.post(atelier.url + "sdapi/v1/txt2img", json=body, timeout=60)
    assert r.status_code == 422
    assert any(e["loc"][-1] == field for e in r.json()["detail"])


def test_an_init_image_that_is_not_an_image_is_a_clear_422(atelier):
    for text, words in (("not base64 at all!", "not base64"),
                        (base64.b64encode(b"hello, not a picture").decode(), "init_images")):
        r = httpx.post(atelier.url + "sdapi/v1/img2img", json={"prompt": "x", "init_images": [text]}, timeout=60)
        assert r.status_code == 422, r.text
        assert words in r.json()["detail"] and "Traceback" not in r.text


def test_png_info_reads_what_made_a_picture_and_says_when_nothing_did(atelier):
    made = httpx.post(atelier.url + "sdapi/v1/txt2img", json={"prompt": "a tin robot", "seed": 5, "width": 64,
                                                             "height": 64, "steps": 2}, timeout=300).json()
    answer = httpx.post(atelier.url + "sdapi/v1/png-info", json={"image": made["images"][0]}, timeout=60).json()
    assert answer["info"].startswith("a tin robot") and "Seed: 5" in answer["info"]
    assert answer["parameters"]["seed"] == 5 and answer["parameters"]["steps"] == 2
    bare = base64.b64encode(png_bytes(PIL.Image.new("RGB", (8, 8)))).decode()
    for image, words in ((bare, "no generation parameters"), (base64.b64encode(b"text").decode(), "not an image")):
        r = httpx.post(atelier.url + "sdapi/v1/png-info", json={"image": image}, timeout=60)
        assert r.status_code == 422 and words in r.json()["detail"], r.text


def test_an_unknown_sampler_is_a_422_naming_the_choices(atelier):
    r = httpx.post(atelier.url + "sdapi/v1/txt2img", json={"prompt": "x", "sampler_name": "Nonesuch", "steps": 2,
                                                            "width": 64, "height": 64}, timeout=60)
    assert r.status_code == 422 and "Nonesuch" in r.json()["detail"]


def test_accounts_mode_takes_the_key_as_bearer_or_basic_auth_and_keeps_jobs_apart(accounts_app, make_user):
    (alice, alice_key), (_, bob_key) = make_user(balance=50), make_user(balance=50)
    base = accounts_app.url + "sdapi/v1/"
    assert httpx.get(base + "sd-models", timeout=30).status_code == 401
    assert httpx.get(base + "sd-models", headers={"Authorization": "Bearer atl_wrong"}, timeout=30).status_code == 401
    # A1111's --api-auth: the password is the key.
    api = client_for(accounts_app, username="alice", password=alice_key)
    result = api.txt2img(prompt="a kite", width=64, height=64, steps=2, seed=3)
    assert accounts_app.artifacts.holding(alice, result.info["artifact_ids"][0]) is not None
    # Bob's interrupt touches nothing of Alice's, and his progress shows none of her jobs.
    answer = {}
    thread = threading.Thread(target=lambda: answer.update(r=httpx.post(
        base + "txt2img", json={"prompt": "slow", "steps": 150, "width": 128, "height": 128},
        headers={"Authorization": f"Bearer {alice_key}"}, timeout=600)))
    thread.start()
    alice_headers = {"Authorization": f"Bearer {alice_key}"}
    wait_until(lambda: httpx.get(base + "progress", headers=alice_headers, timeout=30).json()["current_task"],
               "Alice's slow job to be queued", timeout=300)
    bob_headers = {"Authorization": f"Bearer {bob_key}"}
    assert httpx.get(base + "progress", headers=bob_headers, timeout=30).json()["current_task"] is None
    assert httpx.post(base + "interrupt", headers=bob_headers, timeout=30).status_code == 200
    job_id = httpx.get(base + "progress", headers=alice_headers, timeout=30).json()["current_task"]
    assert accounts_app.service.job(alice, job_id).status in ("queued", "running")
    httpx.post(base + "interrupt", headers=alice_headers, timeout=30)
    thread.join(300)
    assert accounts_app.service.job(alice, job_id).status == "cancelled"
