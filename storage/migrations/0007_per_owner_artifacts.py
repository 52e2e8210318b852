"""Per-owner artifacts (issue 11): how each user came by a file moves from the file's one row to each
holder's own ArtifactOwner row.

An artifact's id is the hash of its bytes, so the same bytes are one Artifact row however many users
hold them. Until now that row carried the kind, job and seed of whoever stored the bytes first, and
anyone who uploaded the same bytes later (from a share link, say) read that first user's job, recipe
and lineage through it. Now each holding carries its own `kind`, `job`, `plan_hash`, `step_id`,
`output_index` and `seed`, and Artifact keeps only what the bytes are.

Filling the new columns: the holding of the user who made an artifact (the owner of its job; the
artifact's `owner` where the job is gone) gets the artifact's kind, job and place in the plan, and is
added if that user somehow had none; every other holder gets kind "upload" and no job, which is what
they did: they sent bytes someone else made. Uploads stay uploads for everyone.
"""
from peewee import BigIntegerField, CharField, ForeignKeyField, IntegerField, Model, SqliteDatabase

MOVED = ("kind", "job_id", "plan_hash", "step_id", "output_index", "seed")

# Who made each artifact: its job's owner (jobs move with a guest who logs in; the artifact's `owner`
# stays the guest), or the artifact's own owner where the job was deleted.
MAKER = "COALESCE((SELECT j.owner_id FROM job j WHERE j.id = a.job_id), a.owner_id)"


def _referenced(db):
    # Snapshots of the tables the new foreign keys point at (see 0001_initial.py for why).
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class User(Base):
        pass

    class Job(Base):
        id = CharField(primary_key=True, max_length=32)

    return User, Job


def _holding_columns(db):
    _, job = _referenced(db)
    return [("kind", CharField(default="upload")),
            ("job_id", ForeignKeyField(job, field=job.id, null=True, on_delete="SET NULL", index=True)),
            ("plan_hash", CharField(max_length=64, default="")),
            ("step_id", CharField(default="")),
            ("output_index", IntegerField(default=0)),
            ("seed", BigIntegerField(null=True))]


def up(migrator, db):
    migrator.migrate(*[migrator.add_column("artifact_owner", name, field) for name, field in _holding_columns(db)])
    # The maker's holding, where an artifact was written before holdings were kept for every writer.
    db.execute_sql(f"INSERT INTO artifact_owner (artifact_id, owner_id, created_at, kind, plan_hash, step_id, "
                   f"output_index) SELECT a.id, {MAKER}, a.created_at, 'upload', '', '', 0 FROM artifact a "
                   f"WHERE a.kind <> 'upload' AND NOT EXISTS (SELECT 1 FROM artifact_owner o "
                   f"WHERE o.artifact_id = a.id AND o.owner_id = {MAKER})")
    # The maker's holding gets how it was made; the others keep the defaults: an upload, no job.
    copied = ", ".join(f"{column} = (SELECT a.{column} FROM artifact a WHERE a.id = artifact_owner.artifact_id)"
                       for column in MOVED)
    db.execute_sql(f"UPDATE artifact_owner SET {copied} WHERE EXISTS (SELECT 1 FROM artifact a "
                   f"WHERE a.id = artifact_owner.artifact_id AND a.kind <> 'upload' "
                   f"AND artifact_owner.owner_id = {MAKER})")
    _drop_artifact_columns(migrator, db)


def _drop_artifact_columns(migrator, db):
    if isinstance(db, SqliteDatabase):
        # SQLite drops an indexed or foreign-key column only by rebuilding the table ("legacy").
        migrator.migrate(migrator.drop_index("artifact", "artifact_owner_id"),
                         migrator.drop_index("artifact", "artifact_job_id"),
                         migrator.drop_column("artifact", "owner_id", legacy=True),
                         migrator.drop_column("artifact", "job_id", legacy=True))
    else:
        migrator.migrate(migrator.drop_column("artifact", "owner_id"), migrator.drop_column("artifact", "job_id"))
    migrator.migrate(*[migrator.drop_column("artifact", column) for column in MOVED if column != "job_id"])


def down(migrator, db):
    """Back to one row per file: the artifact takes the facts of its first made holding (else of its
    first holding), and its owner is that holding's owner (none for a file nobody holds any more)."""
    user, job = _referenced(db)
    migrator.migrate(
        migrator.add_column("artifact", "owner_id", ForeignKeyField(user, field=user.id, null=True,
                                                                    on_delete="CASCADE", index=True)),
        migrator.add_column("artifact", "kind", CharField(default="upload")),
        migrator.add_column("artifact", "job_id", ForeignKeyField(job, field=job.id, null=True, on_delete="SET NULL",
                                                                  index=True)),
        migrator.add_column("artifact", "plan_hash", CharField(max_length=64, default="")),
        migrator.add_column("artifact", "step_id", CharField(default="")),
        migrator.add_column("artifact", "output_index", IntegerField(default=0)),
        migrator.add_column("artifact", "seed", BigIntegerField(null=True)),
    )
    first = ("(SELECT o.id FROM artifact_owner o WHERE o.artifact_id = artifact.id "
             "ORDER BY CASE WHEN o.kind = 'upload' THEN 1 ELSE 0 END, o.created_at, o.id LIMIT 1)")
    unset = {"kind": "'upload'", "plan_hash": "''", "step_id": "''", "output_index": "0"}     # NOT NULL ones
    copied = ", ".join(f"{column} = COALESCE((SELECT o.{column} FROM artifact_owner o WHERE o.id = {first}), "
                       f"{unset.get(column, 'NULL')})" for column in ("owner_id", *MOVED))
    db.execute_sql(f"UPDATE artifact SET {copied}")
    if isinstance(db, SqliteDatabase):
        migrator.migrate(migrator.drop_index("artifact_owner", "artifact_owner_job_id"),
                         migrator.drop_column("artifact_owner", "job_id", legacy=True))
    else:
        migrator.migrate(migrator.drop_column("artifact_owner", "job_id"))
    migrator.migrate(*[migrator.drop_column("artifact_owner", column) for column in MOVED if column != "job_id"])
