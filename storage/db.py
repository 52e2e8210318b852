"""Opening the database: SQLite in the data folder by default, any URL through `playhouse.db_url`.

SQLite runs in WAL mode with a busy timeout, and takes the write lock at the start of every
transaction (`lock_type="IMMEDIATE"`): a deferred read-then-write transaction in WAL mode fails
at once with "database is locked" when another thread writes, whatever the busy timeout.
"""
from __future__ import annotations

import logging
import pathlib

from peewee import Database, DatabaseProxy, SqliteDatabase
from playhouse.db_url import connect
from playhouse.migrations import Runner

logger = logging.getLogger(__name__)

database = DatabaseProxy()
MIGRATIONS = pathlib.Path(__file__).resolve().parent / "migrations"
SQLITE_PRAGMAS = {"journal_mode": "wal", "synchronous": "normal", "busy_timeout": 10000, "foreign_keys": 1}


def connect_database(url: str) -> Database:
    """Return a database for `url` ("sqlite:///path.db", "postgresql://user@host/db", ...)."""
    if url.startswith("sqlite:///"):
        path = pathlib.Path(url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteDatabase(str(path), pragmas=SQLITE_PRAGMAS, lock_type="IMMEDIATE",
                              check_same_thread=False)
    return connect(url)


def open_database(url: str) -> Database:
    """Connect `database` to `url` and apply pending migrations. Returns the real database."""
    db = connect_database(url)
    database.initialize(db)
    applied = migrate(db)
    if applied:
        logger.info("database: applied migrations %s", applied)
    return db


def migrate(db: Database) -> list[str]:
    """Apply the migrations in storage/migrations that `db` has not had yet; returns their names."""
    with db.connection_context():
        return Runner(db, str(MIGRATIONS)).up()
