"""Stripe subscription events in order (issue 11): each user keeps the `created` time and id of the last
subscription event applied, so a late or re-delivered older event (a plan's `updated` arriving after its
`deleted`) changes nothing. Existing users start at 0 and "": the first event that comes is applied."""
from peewee import BigIntegerField, CharField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("user", "stripe_event_created", BigIntegerField(default=0)),
        migrator.add_column("user", "stripe_event_id", CharField(default="")),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_column("user", "stripe_event_id"),
        migrator.drop_column("user", "stripe_event_created"),
    )
