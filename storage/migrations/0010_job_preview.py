"""Honest progress (issue 14, items 1 and 2): a running job's live preview (a small PNG of its latents), its
estimate of the seconds left, and when its progress was last written. Jobs from before have none of them."""
from peewee import BlobField, DoubleField


def up(migrator, db):
    migrator.migrate(migrator.add_column("job", "progress_preview", BlobField(null=True)),
                     migrator.add_column("job", "progress_eta", DoubleField(null=True)),
                     migrator.add_column("job", "progress_at", DoubleField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("job", "progress_preview"),
                     migrator.drop_column("job", "progress_eta"),
                     migrator.drop_column("job", "progress_at"))
