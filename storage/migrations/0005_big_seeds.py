"""Seeds as 64-bit integers: a seed goes up to 2**32 - 1, past a PostgreSQL `integer` (SQLite's INTEGER
already holds 64 bits, so there is nothing to change there)."""
from peewee import BigIntegerField, IntegerField, SqliteDatabase


def up(migrator, db):
    if not isinstance(db, SqliteDatabase):
        migrator.migrate(migrator.alter_column_type("artifact", "seed", BigIntegerField(null=True)))


def down(migrator, db):
    if not isinstance(db, SqliteDatabase):
        migrator.migrate(migrator.alter_column_type("artifact", "seed", IntegerField(null=True)))
