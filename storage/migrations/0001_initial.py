"""Users, jobs, artifacts and lineage: the tables as the walking skeleton created them."""
from peewee import (BooleanField, CharField, DoubleField, ForeignKeyField, IntegerField, Model,
                    TextField)


def _tables(db):
    # A snapshot of the models at this migration, so later changes to storage/models.py don't
    # change what this migration creates.
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class User(Base):
        email = CharField(unique=True)
        name = CharField(default="")
        role = CharField(default="user")
        tier = CharField(default="free")
        created_at = DoubleField()

    class Job(Base):
        id = CharField(primary_key=True, max_length=32)
        owner = ForeignKeyField(User, on_delete="CASCADE")
        status = CharField(default="queued", index=True)
        spec = TextField()
        plan = TextField()
        plan_hash = CharField(max_length=64, index=True)
        credits = DoubleField(default=0.0)
        priority = IntegerField(default=0)
        progress_step = IntegerField(default=0)
        progress_steps = IntegerField(default=0)
        progress_node = IntegerField(default=0)
        progress_nodes = IntegerField(default=0)
        cancel_requested = BooleanField(default=False)
        error = TextField(default="")
        outputs = TextField(default="[]")
        result = TextField(default="{}")
        replay_of = CharField(max_length=64, default="")
        attempts = IntegerField(default=0)
        worker = CharField(default="")
        created_at = DoubleField(index=True)
        started_at = DoubleField(null=True)
        finished_at = DoubleField(null=True)

    class Artifact(Base):
        id = CharField(primary_key=True, max_length=64)
        owner = ForeignKeyField(User, on_delete="CASCADE")
        kind = CharField()
        mime = CharField()
        size = IntegerField()
        width = IntegerField(default=0)
        height = IntegerField(default=0)
        blob_key = CharField()
        job = ForeignKeyField(Job, null=True, on_delete="SET NULL")
        plan_hash = CharField(max_length=64, default="")
        step_id = CharField(default="")
        output_index = IntegerField(default=0)
        seed = IntegerField(null=True)
        created_at = DoubleField(index=True)

    class Lineage(Base):
        child = ForeignKeyField(Artifact, on_delete="CASCADE")
        parent = ForeignKeyField(Artifact, on_delete="CASCADE")
        relation = CharField()

        class Meta:
            indexes = ((("child", "parent", "relation"), True),)

    return [User, Job, Artifact, Lineage]


def up(migrator, db):
    db.create_tables(_tables(db))


def down(migrator, db):
    db.drop_tables(list(reversed(_tables(db))))
