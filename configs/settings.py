"""The one typed settings object: `configs/default.toml`, overridden by `ATELIER_*` variables.

`app.py` calls `load_settings()` once and passes the result (or the parts a component needs) down;
nothing reads settings at import time and nothing changes them per request.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
import tomllib
from dataclasses import dataclass, field

CONFIG_DIR = pathlib.Path(__file__).resolve().parent
DEFAULT_TOML = CONFIG_DIR / "default.toml"


@dataclass(frozen=True)
class Limits:
    """Bounds every request is checked against by the compiler."""

    max_side: int = 2048
    max_pixels: int = 2048 * 2048
    min_side: int = 64
    max_steps: int = 150
    max_cfg_scale: float = 30.0
    max_batch_size: int = 8
    max_prompt_chars: int = 2000
    max_upload_bytes: int = 50 * 1024 * 1024
    max_frames: int = 128          # frames of one video (made, or after interpolation)
    max_fps: int = 60              # frames per second of a video made
    max_nodes: int = 64            # nodes in one workflow (steps in one replayed plan), whatever the tier


@dataclass(frozen=True)
class OAuthProvider:
    """One "Log in with ..." button.

    name:                 used in the routes (/login/NAME) and to link accounts.
    label:                what the button says.
    client_id, client_secret: the app's credentials at the provider.
    server_metadata_url:  an OpenID Connect issuer's discovery document
                          (https://issuer/.well-known/openid-configuration).
    authorize_url, access_token_url, userinfo_url: for plain OAuth 2 providers (GitHub) instead.
    scope:                what to ask for.
    """

    name: str
    client_id: str
    client_secret: str = ""
    label: str = ""
    server_metadata_url: str = ""
    authorize_url: str = ""
    access_token_url: str = ""
    userinfo_url: str = ""
    scope: str = "openid email profile"


AUTH_MODES = ("local", "accounts")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with the TOML section each field comes from.

    data_dir:            [paths] folder for the database, queue, blobs and demo models.
    host, port:          [server] where the web app listens.
    share:               [server] open a Gradio share link.
    web_only:            [server] serve the UI only; jobs run in `python -m queueing.worker`.
    mcp:                 [server] serve Gradio's MCP server at /gradio_api/mcp (generation, job, artifact and
                         PNG Info tools for AI agents; in accounts mode it asks for the same API key).
    log_format:          [server] "text" or "json" (one object per line) for the app's and workers' logs.
    metrics_token:       [server] when set, /metrics needs `Authorization: Bearer <token>`.
    worker_metrics_port: [queue] a worker's own /metrics port (`python -m queueing.worker`); 0 = none.
    database_url:        [database] Peewee URL; "" = SQLite in data_dir.
    queue_url:           [queue] Huey URL; "" = SqliteHuey in data_dir, "redis://..." = Redis.
    queue_workers:       [queue] consumer threads inside `python app.py`: jobs that run at once, taking turns on
                         the device (turn_seconds).
    job_lease_seconds:   [queue] how long a worker holds a job without renewing it (its heartbeat renews it);
                         a job whose lease ran out is retried once by another worker, then failed.
    requeue_grace_seconds: [queue] a job queued in its row but missing from the queue this long after its id
                         was enqueued (Redis restarted empty) is enqueued again by a worker's heartbeat.
    worker_wait_seconds: [queue] a synchronous call (/txt2img...) whose job is still queued after this long
                         while no worker is running fails saying so; the job stays queued for a later worker.
    blobs_url:           [blobs] blob store; "" = <data_dir>/blobs.
    device:              [engine] "auto", "cuda", "mps" or "cpu".
    model_cache_size:    [engine] loaded pipelines kept in memory.
    torch_threads:       [engine] torch's threads for each job; 0 = torch's default (one per core). The count
                         changes the bytes, so workers that should make the same files need the same count.
    progress_interval:   [engine] seconds between progress writes to the job row.
    turn_seconds:        [engine] seconds a job keeps the device, when another waits, before it hands over at a
                         step boundary (pipelines.turns); 0 = never mid-node (each node runs whole).
    catalogue, styles:   [paths] the model catalogue and the style presets (TOML files).
    tiers:               [paths] tiers, credit packs and credit prices (TOML file).
    limits:              [limits].
    public_url:          [server] the address people reach the app at (for OAuth and Stripe redirects);
                         "" = the address of each request.
    auth_mode:           [auth] "local" (one owner, no login) or "accounts" (sign-up, credits, limits).
    guest_credits:       [auth] credits a visitor without an account gets.
    session_secret:      [auth] key that signs session cookies; "" = a random one kept in data_dir.
    session_days:        [auth] how long a login lasts.
    oauth_providers:     [[auth.provider]] OAuth / OpenID Connect providers offered on the login page.
    stripe_secret_key, stripe_webhook_secret: [billing] Stripe's keys (better set by environment).
    stripe_api_base:     [billing] Stripe API address; "" = Stripe itself (tests point it elsewhere).
    """

    data_dir: pathlib.Path = pathlib.Path("data")
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    web_only: bool = False
    mcp: bool = True
    log_format: str = "text"
    metrics_token: str = ""
    worker_metrics_port: int = 0
    database_url: str = ""
    queue_url: str = ""
    queue_workers: int = 2
    job_lease_seconds: float = 60.0
    requeue_grace_seconds: float = 60.0
    worker_wait_seconds: float = 5.0
    blobs_url: str = ""
    device: str = "auto"
    model_cache_size: int = 2
    torch_threads: int = 0
    progress_interval: float = 0.1
    turn_seconds: float = 2.0
    catalogue: pathlib.Path = CONFIG_DIR / "models.toml"
    styles: pathlib.Path = CONFIG_DIR / "styles.toml"
    tiers: pathlib.Path = CONFIG_DIR / "tiers.toml"
    limits: Limits = field(default_factory=Limits)
    public_url: str = ""
    auth_mode: str = "local"
    guest_credits: float = 5.0
    session_secret: str = ""
    session_days: float = 30.0
    oauth_providers: tuple[OAuthProvider, ...] = ()
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_api_base: str = ""

    @property
    def accounts(self) -> bool:
        """True when people sign in and pay (auth_mode "accounts")."""
        return self.auth_mode == "accounts"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'atelier.db'}"

    @property
    def models_dir(self) -> pathlib.Path:
        return self.data_dir / "models"

    @property
    def loras_dir(self) -> pathlib.Path:
        """LoRA files (*.safetensors), used as <lora:NAME:WEIGHT> in prompts."""
        return self.models_dir / "loras"

    @property
    def embeddings_dir(self) -> pathlib.Path:
        """Textual-inversion embeddings (*.safetensors), used by their file name in prompts."""
        return self.models_dir / "embeddings"


# (environment variable, TOML section, TOML key, Settings field). GRADIO_SERVER_NAME/PORT, which
# Hugging Face Spaces set, are read when the ATELIER_ variable is absent, and PORT (Cloud Run, Render,
# Heroku and most container hosts set it) when none of those is.
ENVIRONMENT = [
    ("ATELIER_DATA_DIR", "paths", "data_dir", "data_dir"),
    ("ATELIER_CATALOGUE", "paths", "catalogue", "catalogue"),
    ("ATELIER_STYLES", "paths", "styles", "styles"),
    ("ATELIER_TIERS", "paths", "tiers", "tiers"),
    ("ATELIER_HOST", "server", "host", "host"),
    ("GRADIO_SERVER_NAME", "server", "host", "host"),
    ("ATELIER_PORT", "server", "port", "port"),
    ("GRADIO_SERVER_PORT", "server", "port", "port"),
    ("PORT", "server", "port", "port"),
    ("ATELIER_SHARE", "server", "share", "share"),
    ("ATELIER_PUBLIC_URL", "server", "public_url", "public_url"),
    ("ATELIER_LOG_FORMAT", "server", "log_format", "log_format"),
    ("ATELIER_METRICS_TOKEN", "server", "metrics_token", "metrics_token"),
    ("ATELIER_METRICS_PORT", "queue", "metrics_port", "worker_metrics_port"),
    ("ATELIER_WEB_ONLY", "server", "web_only", "web_only"),
    ("ATELIER_MCP", "server", "mcp", "mcp"),
    ("ATELIER_DATABASE_URL", "database", "url", "database_url"),
    ("ATELIER_QUEUE_URL", "queue", "url", "queue_url"),
    ("ATELIER_QUEUE_WORKERS", "queue", "workers", "queue_workers"),
    ("ATELIER_JOB_LEASE_SECONDS", "queue", "job_lease_seconds", "job_lease_seconds"),
    ("ATELIER_REQUEUE_GRACE_SECONDS", "queue", "requeue_grace_seconds", "requeue_grace_seconds"),
    ("ATELIER_WORKER_WAIT_SECONDS", "queue", "worker_wait_seconds", "worker_wait_seconds"),
    ("ATELIER_BLOBS", "blobs", "url", "blobs_url"),
    ("ATELIER_DEVICE", "engine", "device", "device"),
    ("ATELIER_MODEL_CACHE_SIZE", "engine", "model_cache_size", "model_cache_size"),
    ("ATELIER_TORCH_THREADS", "engine", "torch_threads", "torch_threads"),
    ("ATELIER_PROGRESS_INTERVAL", "engine", "progress_interval", "progress_interval"),
    ("ATELIER_TURN_SECONDS", "engine", "turn_seconds", "turn_seconds"),
    ("ATELIER_AUTH_MODE", "auth", "mode", "auth_mode"),
    ("ATELIER_GUEST_CREDITS", "auth", "guest_credits", "guest_credits"),
    ("ATELIER_SESSION_SECRET", "auth", "session_secret", "session_secret"),
    ("ATELIER_SESSION_DAYS", "auth", "session_days", "session_days"),
    ("ATELIER_STRIPE_SECRET_KEY", "billing", "stripe_secret_key", "stripe_secret_key"),
    ("ATELIER_STRIPE_WEBHOOK_SECRET", "billing", "stripe_webhook_secret", "stripe_webhook_secret"),
    ("ATELIER_STRIPE_API_BASE", "billing", "stripe_api_base", "stripe_api_base"),
]


def _convert(name: str, raw: str, to: type):
    if to is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"{name} must be true or false, got {raw!r}")
    try:
        return to(raw)
    except ValueError:
        raise ValueError(f"{name} must be a {to.__name__}, got {raw!r}") from None


def load_settings(path: str | os.PathLike = DEFAULT_TOML, environ: dict | None = None) -> Settings:
    """Read `path` (default `configs/default.toml`), then apply `ATELIER_*` overrides from `environ`
    (default `os.environ`). Raises ValueError naming the variable when a value has the wrong type."""
    environ = os.environ if environ is None else environ
    with open(path, "rb") as f:
        toml = tomllib.load(f)
    defaults = Settings()
    types = {f.name: type(getattr(defaults, f.name)) for f in dataclasses.fields(Settings)}
    types.update(data_dir=pathlib.Path, catalogue=pathlib.Path, styles=pathlib.Path, tiers=pathlib.Path)
    values = {}
    for variable, _, _, attribute in ENVIRONMENT:         # variables first, the first one set wins
        if attribute not in values and variable in environ:
            values[attribute] = _convert(variable, environ[variable], types[attribute])
    for _, section, key, attribute in ENVIRONMENT:
        if attribute not in values and toml.get(section, {}).get(key, "") != "":    # "" keeps the default
            values[attribute] = types[attribute](toml[section][key])
    values["limits"] = Limits(**toml.get("limits", {}))
    values["oauth_providers"] = tuple(OAuthProvider(**p) for p in toml.get("auth", {}).get("provider", []))
    settings = Settings(**values)
    settings = dataclasses.replace(settings, log_format=settings.log_format.strip().lower() or "text")
    if settings.log_format not in LOG_FORMATS:
        raise ValueError(f"ATELIER_LOG_FORMAT / [server] log_format must be one of {LOG_FORMATS}, got "
                         f"{settings.log_format!r}")
    if settings.auth_mode not in AUTH_MODES:
        raise ValueError(f"ATELIER_AUTH_MODE / [auth] mode must be one of {AUTH_MODES}, got {settings.auth_mode!r}")
    if settings.requeue_grace_seconds <= 0:
        raise ValueError(f"ATELIER_REQUEUE_GRACE_SECONDS / [queue] requeue_grace_seconds must be positive, got "
                         f"{settings.requeue_grace_seconds!r}")
    if settings.worker_wait_seconds < 0:
        raise ValueError(f"ATELIER_WORKER_WAIT_SECONDS / [queue] worker_wait_seconds must be 0 or more, got "
                         f"{settings.worker_wait_seconds!r}")
    if settings.turn_seconds < 0:
        raise ValueError(f"ATELIER_TURN_SECONDS / [engine] turn_seconds must be 0 (whole nodes) or more, got "
                         f"{settings.turn_seconds!r}")
    if settings.torch_threads < 0:
        raise ValueError(f"ATELIER_TORCH_THREADS / [engine] torch_threads must be 0 (torch's default) or more, got "
                         f"{settings.torch_threads!r}")
    return settings
