"""How many of its tier's hourly generations a job uses (issue 11): one per step of its plan that makes
images or video, so that a workflow counts by its steps, not as one job. Jobs from before count as one,
as they did."""
from peewee import IntegerField


def up(migrator, db):
    migrator.migrate(migrator.add_column("job", "generations", IntegerField(default=1)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("job", "generations"))
