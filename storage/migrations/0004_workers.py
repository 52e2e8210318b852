"""Workers and leases: when a job's worker must renew its hold on it, and the workers seen (their
heartbeat, the models they serve), for retrying the jobs of dead workers and for the Admin tab."""
from peewee import CharField, DoubleField, IntegerField, Model, TextField


def _tables(db):
    # A snapshot of the new table at this migration (see 0001_initial.py for why).
    class WorkerRow(Model):
        name = CharField(primary_key=True)
        models = TextField(default="[]")
        threads = IntegerField(default=1)
        running = TextField(default="[]")
        started_at = DoubleField()
        heartbeat_at = DoubleField(index=True)
        stopping_at = DoubleField(null=True)

        class Meta:
            database = db
            table_name = "worker"

    return [WorkerRow]


def up(migrator, db):
    migrator.migrate(migrator.add_column("job", "lease_until", DoubleField(null=True)),
                     migrator.add_index("job", ("status", "lease_until"), False))
    db.create_tables(_tables(db))


def down(migrator, db):
    db.drop_tables(_tables(db))
    migrator.migrate(migrator.drop_index("job", "job_status_lease_until"),
                     migrator.drop_column("job", "lease_until"))
