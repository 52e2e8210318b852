"""When a queued job's id was last put on the queue (issue 11): a worker's reconciler re-enqueues a job
that is `queued` in its row but missing from the queue (Redis restarted empty) once this is older than
a grace period, so a job just enqueued, or just taken by a worker that has not claimed it yet, is left
alone. Jobs from before have none (NULL): their `created_at` stands in for it."""
from peewee import DoubleField


def up(migrator, db):
    migrator.migrate(migrator.add_column("job", "enqueued_at", DoubleField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("job", "enqueued_at"))
