"""Video: the frames and fps of video artifacts, and which phase a job's progress counts (denoising
steps or decoded frames)."""
from peewee import CharField, DoubleField, IntegerField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("artifact", "frames", IntegerField(default=0)),
        migrator.add_column("artifact", "fps", DoubleField(default=0.0)),
        migrator.add_column("job", "progress_phase", CharField(default="")),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_column("job", "progress_phase"),
        migrator.drop_column("artifact", "fps"),
        migrator.drop_column("artifact", "frames"),
    )
