"""Replay on a fresh install from the files alone, and every node kind after a restart (issue 18).

The session's app makes an inpaint from uploaded inputs and a txt2vid video. A `python app.py` on an
empty data folder (the same models) is sent the files: the poster's recipe loads nothing and replays
identically, as a poster; the inpaint's recipe loads an upload, so it says which image to upload, and
replays identically once it is uploaded. That process then makes one job per group of node kinds
(txt2img with a LoRA, canny, ControlNet, img2img, outpaint, Lanczos and model upscales in one workflow;
img2vid with optical-flow and learned interpolation in another; inpaint; interpolate of a stored video;
txt2vid; a Wan text-to-video; a FLUX edit), is killed, and a second process on the same folder replays one artifact of each job (a
video's poster for the video workflow): each replay says identical and remakes every output of its job
byte for byte.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import httpx
import numpy as np
import PIL.Image
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from tests.conftest import free_port

ROOT = pathlib.Path(__file__).resolve().parent.parent
PNG = b"\x89PNG"


class App:
    """`python app.py` in local mode on `data`, served on a free port; its log is `data`/app.log."""

    def __init__(self, data: pathlib.Path, catalogue: pathlib.Path):
        port = free_port()
        env = {**os.environ, "ATELIER_DATA_DIR": str(data), "ATELIER_CATALOGUE": str(catalogue),
               "ATELIER_PORT": str(port), "ATELIER_DEVICE": "cpu", "ATELIER_PROGRESS_INTERVAL": "0.05",
               "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
        self.data, self.catalogue = data, catalogue
        self.log_path = data / "app.log"
        data.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(self.url + "healthz", timeout=2).status_code == 200:
                    self.client = Client(self.url, verbose=False)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"app.py did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """Kill the process, as a crash or a pulled plug would: the restart must not need a clean exit
        (and a clean one waits out uvicorn's grace period for the client's open stream)."""
        self.process.kill()
        self.process.wait(30)

    def job(self, job_id: str, timeout: float = 300) -> dict:
        """/job_status once the job has finished (it must succeed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.client.predict(job_id=job_id, api_name="/job_status")
            if status["status"] in ("succeeded", "failed", "cancelled"):
                assert status["status"] == "succeeded", f"{status['error']}\n{self.log()}"
                return status
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} did not finish in {timeout} s\n{self.log()}")

    def info(self, artifact_id: str) -> tuple[bytes, dict]:
        path, info = self.client.predict(artifact_id=artifact_id, api_name="/artifact_info")
        return pathlib.Path(path).read_bytes(), info


def node(node_id: str, kind: str, inputs: dict | None = None, **params) -> dict:
    return {"id": node_id, "kind": kind, "params": params, **({"inputs": inputs} if inputs else {})}


IMAGES = [  # every image node kind in one workflow
    node("t", "txt2img", prompt="a lighthouse <lora:ink:0.6>", width=64, height=64, steps=2, seed=11),
    node("c", "canny", {"image": ["t", "images"]}, low=50, high=150),
    node("tc", "txt2img", {"control": ["c", "images"]}, prompt="a lighthouse", width=64, height=64, steps=2,
         control_model="demo-controlnet-canny", control_scale=0.8),
    node("i", "img2img", {"image": ["t", "images"]}, prompt="ink", strength=0.6, steps=2),
    node("o", "outpaint", {"image": ["t", "images"]}, prompt="sea", left=16, steps=2),
    node("u", "upscale", {"image": ["t", "images"]}, scale=1.5),
    node("um", "upscale", {"image": ["t", "images"]}, scale=2.0, upscaler="demo-upscaler-x4", steps=1),
]
VIDEOS = [  # image to video, and both interpolators
    node("t", "txt2img", prompt="a kite", width=64, height=64, steps=2, seed=31),
    node("v", "img2vid", {"image": ["t", "images"]}, frames=4, steps=2, seed=32),
    node("f", "interpolate", {"video": ["v", "video"]}, factor=2),
    node("r", "interpolate", {"video": ["v", "video"]}, factor=2, method="demo-rife"),
]


def picture(path: pathlib.Path, seed: int, mask: bool = False) -> str:
    pixels = np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    if mask:
        pixels[:] = 0
        pixels[16:48, 16:48] = 255
    PIL.Image.fromarray(pixels).save(path)
    return str(path)


def with_models(data: pathlib.Path, models: pathlib.Path) -> pathlib.Path:
    """An empty data folder holding the models of `models` (hard links: the same weights, no copying), as
    an install with the same models would; the app builds any demo model it lacks."""
    shutil.copytree(models, data / "models", copy_function=os.link)
    return data


@pytest.fixture(scope="module")
def from_the_session(client, tmp_path_factory):
    """Files the session's app made: an inpaint of uploaded inputs and a txt2vid video's poster. Returns
    ({artifact id: stored bytes}, the inpainted image's id, the poster's id, the inputs' files)."""
    folder = tmp_path_factory.mktemp("inputs")
    inputs = {"image": picture(folder / "source.png", 1), "mask": picture(folder / "mask.png", 2, mask=True)}
    _, painted = client.predict(image=handle_file(inputs["image"]), mask=handle_file(inputs["mask"]), prompt="moss",
                                steps=2, seed=41, api_name="/inpaint")
    _, video = client.predict(prompt="a jellyfish", frames=4, steps=2, seed=51, api_name="/txt2vid")
    files = {}
    for artifact_id in (painted["artifact_ids"][0], video["artifact_id"]):
        path, info = client.predict(artifact_id=artifact_id, api_name="/artifact_info")
        files[artifact_id] = pathlib.Path(path).read_bytes()
        if info.get("poster_id"):
            path, _ = client.predict(artifact_id=info["poster_id"], api_name="/artifact_info")
            files[info["poster_id"]] = pathlib.Path(path).read_bytes()
            poster = info["poster_id"]
    return files, painted["artifact_ids"][0], poster, inputs


@pytest.fixture(scope="module")
def first_life(tmp_path_factory, catalogue_file, settings, from_the_session):
    """A fresh install: `python app.py` on an empty data folder with the session's models (and LoRAs)."""
    data = with_models(tmp_path_factory.mktemp("first-life"), settings.models_dir)
    app = App(data, catalogue_file)
    yield app
    app.stop()


def test_a_fresh_install_replays_a_file_and_names_the_inputs_it_lacks(first_life, from_the_session, tmp_path):
    files, painted, poster, inputs = from_the_session

    def send(artifact_id: str):
        path = tmp_path / (artifact_id[:16] + (".png" if files[artifact_id].startswith(PNG) else ".mp4"))
        path.write_bytes(files[artifact_id])
        return first_life.client.predict(file=handle_file(str(path)), api_name="/replay")

    path, outcome = send(poster)              # a recipe that loads nothing; a poster replays as a poster
    assert (outcome["artifact_id"], outcome["original_id"], outcome["identical"]) == (poster, poster, True)
    assert hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest() == poster
    assert outcome["verdict"].startswith("**Identical:**")

    source = hashlib.sha256(pathlib.Path(inputs["image"]).read_bytes()).hexdigest()
    with pytest.raises(AppError, match=rf"The recipe loads the image {source[:16]}… \(step '.*'\), which you do "
                                       r"not have here\. Upload that image \(the same file\) first"):
        send(painted)
    for name in ("image", "mask"):              # uploaded as the inputs of a cheap request, as a person would
        first_life.client.predict(image=handle_file(inputs[name]), scale=1.0, api_name="/upscale")
    _, outcome = send(painted)
    assert (outcome["artifact_id"], outcome["identical"]) == (painted, True)


def test_every_node_kind_replays_identically_after_a_restart(first_life, from_the_session):
    """One job per group of node kinds in the first life; after a restart on the same folder, a replay of
    one artifact of each job (a video's poster for the video workflow) is identical and says so, and
    remakes every output of its job byte for byte."""
    _, _, _, inputs = from_the_session
    app, data = first_life, first_life.data
    c = app.client
    jobs = {name: app.job(c.predict(spec=json.dumps({"nodes": graph}), api_name="/submit")["job_id"])
            for name, graph in (("images", IMAGES), ("videos", VIDEOS))}
    _, info = c.predict(image=handle_file(inputs["image"]), mask=handle_file(inputs["mask"]), prompt="moss",
                        steps=2, seed=42, api_name="/inpaint")
    jobs["inpaint"] = app.job(info["job_id"])
    _, info = c.predict(artifact_id=jobs["videos"]["artifact_ids"][1], factor=2, api_name="/interpolate")
    jobs["load_video"] = app.job(info["job_id"])
    _, info = c.predict(prompt="a jellyfish", frames=4, steps=2, seed=52, api_name="/txt2vid")
    jobs["txt2vid"] = app.job(info["job_id"])
    _, info = c.predict(prompt="a jellyfish", model="demo-wan22", frames=5, steps=2, seed=53, api_name="/txt2vid")
    jobs["video"] = app.job(info["job_id"])           # a video family's own pipeline (issue 13)
    _, info = c.predict(image=handle_file(inputs["image"]), prompt="make it stormy", model="demo-flux1", steps=2,
                        seed=54, api_name="/edit")
    jobs["edit"] = app.job(info["job_id"])
    kinds = {step["kind"] for job in jobs.values() for step in _plan(data, job["job_id"])["steps"]}
    from pipelines.nodes import REGISTRY
    assert kinds == set(REGISTRY.step_kinds), f"not covered: {set(REGISTRY.step_kinds) - kinds}"
    originals = {name: job["artifact_ids"][-1] for name, job in jobs.items()}
    originals["videos"] = app.info(jobs["videos"]["artifact_ids"][1])[1]["poster_id"]
    app.stop()

    app = App(data, first_life.catalogue)              # the second life, on the same folder
    try:
        for name, job in jobs.items():
            path, outcome = app.client.predict(artifact_id=originals[name], api_name="/replay")
            assert (outcome["artifact_id"], outcome["identical"]) == (originals[name], True), (name, outcome)
            assert outcome["verdict"].startswith("**Identical:**") and outcome["differences"] == []
            assert hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest() == originals[name]
            again = app.job(outcome["job_id"])
            assert again["artifact_ids"] == job["artifact_ids"], name          # every output, byte for byte
            assert again["plan_hash"] == job["plan_hash"]
    finally:
        app.stop()


def _plan(data: pathlib.Path, job_id: str) -> dict:
    import sqlite3

    with sqlite3.connect(data / "atelier.db") as db:
        return json.loads(db.execute("select plan from job where id = ?", (job_id,)).fetchone()[0])
