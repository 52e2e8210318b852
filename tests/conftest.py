"""Session fixtures: one Atelier (tiny demo models, real SQLite, real Huey consumer) served on
127.0.0.1 for the whole run, so models are built and torch is imported once."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")          # before anything imports huggingface_hub
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import contextlib
import socket
import threading
import time

import pytest

REQUIRE_SERVICES = os.environ.get("ATELIER_REQUIRE_SERVICES") == "1"

TEST_CATALOGUE = """
[[model]]
id = "demo-sd15"
family = "sd15"
source = "demo"
description = "Demo model for tests."
width = 64
height = 64
steps = 4
cfg_scale = 7.0
sampler = "euler"
schedule = "normal"

[[model]]
id = "demo-sd15-inpaint"
family = "sd15"
source = "demo"
width = 64
height = 64
steps = 4

[[model]]
id = "demo-controlnet-canny"
family = "controlnet"
base_family = "sd15"
source = "demo"

[[model]]
id = "demo-controlnet-sd35"
family = "controlnet"
base_family = "sd35"
source = "demo"

[[model]]
id = "demo-controlnet-flux"
family = "controlnet"
base_family = "flux1"
source = "demo"

[[model]]
id = "demo-upscaler-x4"
family = "upscaler"
source = "demo"
steps = 2

[[model]]
id = "demo-latent-upscaler-x2"
family = "upscaler"
source = "demo"
steps = 2

[[model]]
id = "demo-svd"
family = "svd"
source = "demo"
width = 64
height = 64
frames = 8
fps = 7
steps = 2
cfg_scale = 3.0

[[model]]
id = "demo-motion-adapter"
family = "animatediff"
base_family = "sd15"
source = "demo"
width = 64
height = 64
frames = 8
fps = 8
steps = 3
cfg_scale = 7.5
sampler = "ddim"
schedule = "normal"

[[model]]
id = "demo-rife"
family = "interpolator"
source = "demo"

[[model]]
id = "demo-sdxl"
family = "sdxl"
source = "demo"
width = 64
height = 64
steps = 4
cfg_scale = 5.0
sampler = "dpmpp_2m"
schedule = "karras"

[[model]]
id = "demo-flux1"
family = "flux1"
source = "demo"
width = 64
height = 64
steps = 2

[[model]]
id = "demo-flux1-fill"
family = "flux1-fill"
source = "demo"
width = 64
height = 64
steps = 2

[[model]]
id = "demo-sd35"
family = "sd35"
source = "demo"
width = 64
height = 64
steps = 2

[[model]]
id = "demo-qwen-image"
family = "qwen-image"
source = "demo"
width = 64
height = 64
steps = 2

[[model]]
id = "demo-qwen-image-edit"
family = "qwen-image-edit"
source = "demo"
width = 64
height = 64
steps = 2

[[model]]
id = "demo-z-image"
family = "z-image"
source = "demo"
width = 64
height = 64
steps = 2

[[model]]
id = "demo-flux2-klein"
family = "flux2"
source = "demo"
width = 64
height = 64
steps = 2

[[model]]
id = "demo-flux2-dev"
family = "flux2-dev"
source = "demo"
width = 64
height = 64
steps = 2

[[model]]
id = "demo-wan22"
family = "wan22"
source = "demo"
width = 64
height = 64
steps = 2
frames = 5
fps = 8

[[model]]
id = "demo-ltx2"
family = "ltx2"
source = "demo"
width = 64
height = 64
steps = 2
frames = 9
fps = 8
"""


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tiny models on one thread: they gain nothing from a second, and on a busy 2-core
    machine spinning worker threads make each run several times slower. The thread count changes the bytes
    (bench/determinism.py), so a module's images are compared only with images made under the same count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def need(reason: str):
    """Skip with `reason`, or fail where the services are required (ATELIER_REQUIRE_SERVICES=1)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required but unavailable: {reason}")
    pytest.skip(reason)


@contextlib.contextmanager
def fresh_postgres_database():
    """A new, empty PostgreSQL database on 127.0.0.1, dropped afterwards; yields its URL."""
    import uuid

    psycopg2 = pytest.importorskip("psycopg2")
    name = f"atelier_test_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg2.connect(host="127.0.0.1", dbname="postgres", user="postgres", connect_timeout=3)
    except psycopg2.OperationalError as e:
        need(f"PostgreSQL is not reachable on 127.0.0.1:5432 ({e})")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.cursor().execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()


@pytest.fixture
def postgres_url():
    """A fresh, empty PostgreSQL database on 127.0.0.1 for one test (dropped after it); its URL."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def moto_url():
    """moto's S3 server on a free port of 127.0.0.1, and the AWS variables pointing at it for the session."""
    try:
        import importlib
        importlib.import_module("boto3")
        from moto.server import ThreadedMotoServer
    except ImportError as e:
        need(f"boto3 or moto's server is not installed (pip install -r requirements.txt -r "
             f"requirements-test.txt): {e}")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    try:
        server.start()
    except Exception as e:      # any failure to start means the service is absent
        need(f"moto's S3 server did not start on 127.0.0.1: {e}")
    url = f"http://127.0.0.1:{server._port}"
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            env.delenv(name, raising=False)
        env.setenv("AWS_ENDPOINT_URL", url)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield url
    server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, what: str, timeout: float = 60.0, interval: float = 0.05, details=lambda: ""):
    """Poll `condition()` until it returns something truthy, and return that. Fails after `timeout` seconds
    with `what` (and `details()`, e.g. logs) in the message. The limit is generous on purpose: it only
    matters when the test fails, and a loaded 2-core machine may take many times longer than an idle one."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}\n{details()}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def catalogue_file(tmp_path_factory):
    """The demo models, plus the same SD1.5 demo weights as a real model would come: a diffusers
    folder ("local-folder") and one original-layout .safetensors file ("single-file")."""
    from diffusers import StableDiffusionPipeline

    from pipelines.demo_model import ensure_demo_model
    from tests.checkpoints import save_single_file

    root = tmp_path_factory.mktemp("config")
    folder = ensure_demo_model(root / "real", "demo-sd15")
    checkpoint = root / "real" / "tiny-sd15.safetensors"
    save_single_file(StableDiffusionPipeline.from_pretrained(folder, local_files_only=True), checkpoint)
    path = root / "models.toml"
    path.write_text(TEST_CATALOGUE + f"""
[[model]]
id = "local-folder"
family = "sd15"
source = "folder:{folder}"
width = 64
height = 64
steps = 4

[[model]]
id = "single-file"
family = "sd15"
source = "file:{checkpoint}"
config = "{folder}"
width = 64
height = 64
steps = 4
""")
    return path


@pytest.fixture(scope="session")
def settings(tmp_path_factory, catalogue_file):
    from configs import load_settings

    data_dir = tmp_path_factory.mktemp("data")
    return load_settings(environ={"ATELIER_DATA_DIR": str(data_dir), "ATELIER_CATALOGUE": str(catalogue_file),
                                  "ATELIER_PROGRESS_INTERVAL": "0.02", "ATELIER_DEVICE": "cpu"})


@pytest.fixture(scope="session")
def extras(settings):
    """LoRA files "ink" and "paper" and an embedding "tinyemb" in the data folder, for the demo SD1.5."""
    from diffusers import StableDiffusionPipeline

    from pipelines.demo_model import ensure_demo_model
    from tests.extras import write_embedding, write_lora

    pipe = StableDiffusionPipeline.from_pretrained(ensure_demo_model(settings.models_dir / "demo", "demo-sd15"),
                                                   local_files_only=True)
    settings.loras_dir.mkdir(parents=True, exist_ok=True)
    settings.embeddings_dir.mkdir(parents=True, exist_ok=True)
    write_lora(pipe, settings.loras_dir, "ink", seed=1)
    write_lora(pipe, settings.loras_dir, "paper", seed=2)
    write_embedding(pipe, settings.embeddings_dir, "tinyemb", seed=3)
    (settings.loras_dir / "pickled.ckpt").write_bytes(b"\x80\x04never opened")
    return settings


def serve(settings):
    """Build the app for `settings` and serve it on a free port; yields it with `url` set."""
    import uvicorn

    import app

    built = app.build(settings)
    port = free_port()
    built.asgi = app.make_fastapi(built)
    server = uvicorn.Server(uvicorn.Config(built.asgi, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    built.url = f"http://127.0.0.1:{port}/"
    built.runner = built.executor.runner     # import torch and build the engine once, up front
    yield built
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="session")
def atelier(settings, extras):
    """The whole app in local mode, built by app.build, serving on a free port with its in-process consumer."""
    yield from serve(settings)


TEST_TIERS = """
[credits]
base_image = 1.0
sdxl_multiplier = 2.0
upscale = 3.0
lora = 0.5
controlnet = 1.0

[tier.free]
monthly_credits = 20
max_side = 512
max_frames = 16
priority = 0
reuse_cost = 0.5

[tier.standard]
monthly_credits = 100
max_side = 1024
priority = 10
stripe_price = "price_standard"

[tier.pro]
monthly_credits = 500
priority = 20
stripe_price = "price_pro"

[tier.limited]
monthly_credits = 100
generations_per_hour = 3
api_calls_per_minute = 6
max_nodes = 4

[[pack]]
id = "small"
credits = 100
price_id = "price_small"
label = "100 credits"
"""


@pytest.fixture(scope="session")
def oidc_issuer():
    """A real OpenID Connect provider (oidc-provider-mock) on 127.0.0.1; yields its issuer URL."""
    try:
        import oidc_provider_mock
    except ImportError:
        need("oidc-provider-mock is not installed (pip install -r requirements-test.txt)")
    users = [oidc_provider_mock.User(sub="alice-sub", claims={"email": "alice@idp.test", "email_verified": True}),
             oidc_provider_mock.User(sub="bob-sub", claims={"email": "bob@idp.test", "email_verified": True})]
    with oidc_provider_mock.run_server_in_thread(port=0, require_nonce=True, user_claims=users) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="session")
def fake_stripe():
    from tests.stripe_fake import FakeStripe

    with FakeStripe() as stripe:
        yield stripe


@pytest.fixture(scope="session")
def accounts_app(atelier, settings, tmp_path_factory, oidc_issuer, fake_stripe):
    """The app in accounts mode: sign-up, credits, tiers (TEST_TIERS), Stripe (the fake), OIDC login (the
    local provider). It shares the database and blobs with `atelier` and has its own queue and consumer."""
    import dataclasses

    from configs import OAuthProvider
    from tests.stripe_fake import SECRET_KEY, WEBHOOK_SECRET

    tiers = tmp_path_factory.mktemp("tiers") / "tiers.toml"
    tiers.write_text(TEST_TIERS)
    provider = OAuthProvider(name="localidp", label="Local IdP", client_id="atelier-test", client_secret="s3cret",
                             server_metadata_url=f"{oidc_issuer}/.well-known/openid-configuration")
    accounts_settings = dataclasses.replace(
        settings, auth_mode="accounts", tiers=tiers, queue_url=f"sqlite:///{settings.data_dir / 'queue-accounts.db'}",
        stripe_secret_key=SECRET_KEY, stripe_webhook_secret=WEBHOOK_SECRET, stripe_api_base=fake_stripe.url,
        oauth_providers=(provider,), guest_credits=5.0)
    yield from serve(accounts_settings)


@pytest.fixture
def make_user(accounts_app):
    """make_user(balance=None, tier="free", role="user", api_key=True) -> (User, key or None): a fresh account
    with exactly `balance` credits (None: what its tier grants)."""
    import uuid

    from auth import api_keys

    def make(balance: float | None = None, tier: str = "free", role: str = "user", api_key: bool = True):
        accounts = accounts_app.web_auth.accounts
        user = accounts.create_user(f"{uuid.uuid4().hex[:10]}@test.example", "correct horse battery", role=role,
                                    tier=tier)
        if balance is not None:
            from auth import credits
            credits.grant(user, balance - credits.balance(user), f"test:{user.id}")
            user = type(user).get_by_id(user.id)
        key = api_keys.create_key(user)[1] if api_key else None
        return user, key
    return make


def api_client(app, key: str | None):
    """A gradio_client for `app` that sends `key` as a Bearer API key."""
    from gradio_client import Client

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return Client(app.url, headers=headers, verbose=False)


@pytest.fixture(scope="module")
def ops(atelier):
    """The operator's routes over the session app's database, queue and blobs (tests/ops.py)."""
    from queueing.metrics import Metrics
    from queueing.observability import Readiness
    from tests.ops import app_with, real_checks

    with app_with(Metrics(), Readiness(real_checks(atelier))) as client:
        yield client


@pytest.fixture(scope="session")
def owner(atelier):
    from auth import local_owner

    return local_owner()


@pytest.fixture(scope="session")
def client(atelier):
    from gradio_client import Client

    return Client(atelier.url, verbose=False)
