"""Peewee models: users, jobs, artifacts and the lineage edges between artifacts.

Times are Unix seconds (floats). Tables are created and changed only by the migrations in
storage/migrations; a change here needs a migration there.
"""
from __future__ import annotations

import json
import time

from peewee import (BooleanField, CharField, DoubleField, ForeignKeyField, IntegerField, Model,
                    TextField)

from storage.db import database

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = ("succeeded", "failed", "cancelled")


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class User(BaseModel):
    email = CharField(unique=True)
    name = CharField(default="")
    role = CharField(default="user")         # owner, admin, user
    tier = CharField(default="free")
    created_at = DoubleField(default=time.time)


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
    progress_step = IntegerField(default=0)
    progress_steps = IntegerField(default=0)
    progress_node = IntegerField(default=0)
    progress_nodes = IntegerField(default=0)
    cancel_requested = BooleanField(default=False)
    error = TextField(default="")
    outputs = TextField(default="[]")        # artifact ids, as a JSON list, in plan order
    result = TextField(default="{}")         # timings and environment, as JSON
    replay_of = CharField(max_length=64, default="")
    attempts = IntegerField(default=0)
    worker = CharField(default="")
    created_at = DoubleField(default=time.time, index=True)
    started_at = DoubleField(null=True)
    finished_at = DoubleField(null=True)

    @property
    def artifact_ids(self) -> list[str]:
        return json.loads(self.outputs)


class Artifact(BaseModel):
    """A stored file; its id is the sha256 of its bytes."""

    id = CharField(primary_key=True, max_length=64)
    owner = ForeignKeyField(User, backref="artifacts", on_delete="CASCADE")
    kind = CharField()                        # image, upload
    mime = CharField()
    size = IntegerField()
    width = IntegerField(default=0)
    height = IntegerField(default=0)
    blob_key = CharField()
    job = ForeignKeyField(Job, null=True, backref="artifacts", on_delete="SET NULL")
    plan_hash = CharField(max_length=64, default="")
    step_id = CharField(default="")
    output_index = IntegerField(default=0)
    seed = IntegerField(null=True)
    created_at = DoubleField(default=time.time, index=True)


class Lineage(BaseModel):
    """`child` was made from `parent`; `relation` says how (source, mask, control, upscale_of,
    frames_of, replay_of)."""

    child = ForeignKeyField(Artifact, backref="parent_edges", on_delete="CASCADE")
    parent = ForeignKeyField(Artifact, backref="child_edges", on_delete="CASCADE")
    relation = CharField()

    class Meta:
        indexes = ((("child", "parent", "relation"), True),)


MODELS = [User, Job, Artifact, Lineage]
