"""Peewee models: users and what they hold (sessions, API keys, credit ledger, share links), jobs,
artifacts and the lineage edges between artifacts, and the audit log.

Times are Unix seconds (floats). Tables are created and changed only by the migrations in
storage/migrations; a change here needs a migration there.
"""
from __future__ import annotations

import json
import time

from peewee import (BigIntegerField, BlobField, BooleanField, CharField, DoubleField, ForeignKeyField, IntegerField,
                    Model, TextField)

from storage.db import database

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = ("succeeded", "failed", "cancelled")


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


ROLES = ("admin", "user", "viewer")
CREDIT_KINDS = ("grant", "reserve", "capture", "release", "refund")


class User(BaseModel):
    """A person (or a guest who has not signed up yet). `balance` is the running sum of the user's
    ledger entries, kept in the same transaction as each entry so a debit is one conditional UPDATE."""

    email = CharField(unique=True)
    name = CharField(default="")
    role = CharField(default="user")         # admin, user, viewer
    tier = CharField(default="free")
    password_hash = CharField(default="")    # argon2id; "" = no password (guest, OAuth-only, local owner)
    is_guest = BooleanField(default=False)
    balance = DoubleField(default=0.0)
    stripe_customer = CharField(default="", index=True)
    stripe_subscription = CharField(default="")   # the live subscription that sets `tier`
    # The last subscription event applied to this user (Stripe's `created`, Unix seconds, and its id):
    # Stripe may deliver events late and out of order, and an older one must not undo a newer one.
    stripe_event_created = BigIntegerField(default=0)
    stripe_event_id = CharField(default="")
    created_at = DoubleField(default=time.time)


class Session(BaseModel):
    """A login: the cookie carries a random token, the table only its sha256."""

    token_hash = CharField(max_length=64, unique=True)
    user = ForeignKeyField(User, backref="sessions", on_delete="CASCADE")
    created_at = DoubleField(default=time.time)
    expires_at = DoubleField()


class ApiKey(BaseModel):
    """A key for scripts: shown once, stored as its sha256, listed by its prefix, revocable."""

    user = ForeignKeyField(User, backref="api_keys", on_delete="CASCADE")
    name = CharField(default="")
    prefix = CharField(max_length=16)
    key_hash = CharField(max_length=64, unique=True)
    created_at = DoubleField(default=time.time)
    last_used_at = DoubleField(null=True)
    revoked_at = DoubleField(null=True)


class OAuthIdentity(BaseModel):
    """The account at an OAuth / OpenID Connect provider (`subject` = its `sub`) that logs in as `user`."""

    provider = CharField()
    subject = CharField()
    user = ForeignKeyField(User, backref="identities", on_delete="CASCADE")
    email = CharField(default="")
    created_at = DoubleField(default=time.time)

    class Meta:
        table_name = "oauth_identity"
        indexes = ((("provider", "subject"), True),)


class CreditEntry(BaseModel):
    """One line of the append-only credit ledger. `key` makes each entry happen at most once
    (reserve:JOB, settle:JOB, stripe:SESSION, monthly:USER:YYYY-MM, ...)."""

    user = ForeignKeyField(User, backref="credit_entries", on_delete="CASCADE")
    kind = CharField()                       # grant, reserve, capture, release, refund
    amount = DoubleField()                   # + adds to the balance, - takes from it
    key = CharField(unique=True)
    job_id = CharField(max_length=32, default="", index=True)
    note = CharField(default="")
    created_at = DoubleField(default=time.time, index=True)


class Job(BaseModel):
    """One request, from queued to a terminal status; the single source of truth for its progress."""

    id = CharField(primary_key=True, max_length=32)
    owner = ForeignKeyField(User, backref="jobs", on_delete="CASCADE")
    status = CharField(default="queued", index=True)
    spec = TextField()                       # the WorkflowSpec as JSON ("" for replays)
    plan = TextField()                       # the ExecutionPlan as JSON
    plan_hash = CharField(max_length=64, index=True)
    credits = DoubleField(default=0.0)       # what it cost (0 in local mode)
    priority = IntegerField(default=0)
    generations = IntegerField(default=1)    # of the tier's hourly allowance: its steps that make images or video
    progress_step = IntegerField(default=0)
    progress_steps = IntegerField(default=0)
    progress_node = IntegerField(default=0)
    progress_nodes = IntegerField(default=0)
    # loading, denoising (progress_step counts steps), decoding (it counts decoded video frames) or saving; rows
    # from before issue 14 say "" for denoising and "frame" for decoding
    progress_phase = CharField(default="")
    progress_preview = BlobField(null=True)  # a small PNG of the latents, while running (pipelines.preview)
    progress_eta = DoubleField(null=True)    # seconds left, as estimated when progress was last written
    progress_at = DoubleField(null=True)     # when progress was last written (Unix s)
    cancel_requested = BooleanField(default=False)
    error = TextField(default="")
    outputs = TextField(default="[]")        # artifact ids, as a JSON list, in plan order
    result = TextField(default="{}")         # timings and environment, as JSON
    replay_of = CharField(max_length=64, default="")
    attempts = IntegerField(default=0)
    worker = CharField(default="")
    lease_until = DoubleField(null=True)     # a running job's worker renews this; past it, the worker is gone
    enqueued_at = DoubleField(null=True, default=time.time)  # its id last put on the queue (queueing.reconcile)
    created_at = DoubleField(default=time.time, index=True)
    started_at = DoubleField(null=True)
    finished_at = DoubleField(null=True)

    @property
    def artifact_ids(self) -> list[str]:
        return json.loads(self.outputs)


class Artifact(BaseModel):
    """A stored file, as bytes: its id is the sha256 of its bytes, and it says only what the bytes are
    (type, size, picture size, frames). Who holds it, and how each holder came by it (made by one of
    their jobs, or sent), is in its ArtifactOwner rows: the same bytes may be one user's picture and
    another's upload."""

    id = CharField(primary_key=True, max_length=64)
    mime = CharField()
    size = IntegerField()
    width = IntegerField(default=0)
    height = IntegerField(default=0)
    blob_key = CharField()
    frames = IntegerField(default=0)          # videos: number of frames and frames per second
    fps = DoubleField(default=0.0)
    created_at = DoubleField(default=time.time, index=True)


class Lineage(BaseModel):
    """`child` was made from `parent`; `relation` says how (source, mask, control, upscale_of,
    frames_of, poster_of, replay_of)."""

    child = ForeignKeyField(Artifact, backref="parent_edges", on_delete="CASCADE")
    parent = ForeignKeyField(Artifact, backref="child_edges", on_delete="CASCADE")
    relation = CharField()

    class Meta:
        indexes = ((("child", "parent", "relation"), True),)


class ArtifactOwner(BaseModel):
    """`owner` holds `artifact` (made it, sent it, or had it moved over from a guest session), and how,
    as this owner alone sees it: `kind` and, for what one of the owner's jobs made, that `job` and the
    place in its plan. Two users holding the same bytes have two rows and see only their own: one
    user's upload of another's picture is an "upload", with no job and no recipe."""

    artifact = ForeignKeyField(Artifact, backref="holders", on_delete="CASCADE")
    owner = ForeignKeyField(User, backref="holdings", on_delete="CASCADE")
    kind = CharField(default="upload")        # image, video, poster (a video's first frame), upload
    job = ForeignKeyField(Job, null=True, backref="holdings", on_delete="SET NULL")   # the owner's job that made it
    plan_hash = CharField(max_length=64, default="")
    step_id = CharField(default="")
    output_index = IntegerField(default=0)
    seed = BigIntegerField(null=True)         # up to 2**32 - 1, past a PostgreSQL integer
    created_at = DoubleField(default=time.time, index=True)
    # What the Gallery searches: the prompt and the model id of the step that made it ("" for uploads).
    prompt = TextField(default="")
    model = CharField(default="")
    # Whether a job of theirs made it as one of the plan's final outputs; a hires fix's first picture and its
    # enlargement are not, and "My outputs" leaves them to lineage (uploads count as final).
    final = BooleanField(default=True)

    @property
    def made(self) -> bool:
        """Whether one of the owner's jobs made it (so its recipe and lineage are the owner's)."""
        return self.kind != "upload"

    class Meta:
        indexes = ((("artifact", "owner"), True), (("owner", "created_at"), False))


class ShareLink(BaseModel):
    """A read-only link to some of a user's artifacts; anyone with the token may see them until revoked."""

    token = CharField(max_length=64, unique=True)
    owner = ForeignKeyField(User, backref="share_links", on_delete="CASCADE")
    artifact_ids = TextField()               # JSON list
    show_recipe = BooleanField(default=True)
    created_at = DoubleField(default=time.time)
    revoked_at = DoubleField(null=True)

    @property
    def artifacts(self) -> list[str]:
        return json.loads(self.artifact_ids)


class AuditEvent(BaseModel):
    """Something an admin (or billing) did to an account: grants, tier and role changes."""

    actor = ForeignKeyField(User, null=True, backref="actions", on_delete="SET NULL")
    action = CharField()
    target = ForeignKeyField(User, null=True, backref="audit_events", on_delete="SET NULL")
    details = TextField(default="{}")
    created_at = DoubleField(default=time.time, index=True)


class Worker(BaseModel):
    """A process that runs jobs ("host:pid"), as its last heartbeat described it."""

    name = CharField(primary_key=True)
    models = TextField(default="[]")          # ids of the models it serves, as JSON; [] = all
    threads = IntegerField(default=1)
    running = TextField(default="[]")         # ids of the jobs it holds, as JSON
    started_at = DoubleField(default=time.time)
    heartbeat_at = DoubleField(default=time.time, index=True)
    stopping_at = DoubleField(null=True)      # set when it was told to stop (SIGTERM)

    class Meta:
        table_name = "worker"


MODELS = [User, Session, ApiKey, OAuthIdentity, CreditEntry, Job, Artifact, ArtifactOwner, Lineage, ShareLink,
          AuditEvent, Worker]
