"""Opening the database: SQLite in the data folder by default, PostgreSQL (pooled) or any other
`playhouse.db_url` URL at scale; the schema's version and its migrations.

SQLite runs in WAL mode with a busy timeout, and takes the write lock at the start of every
transaction (`lock_type="IMMEDIATE"`): a deferred read-then-write transaction in WAL mode fails
at once with "database is locked" when another thread writes, whatever the busy timeout.

PostgreSQL URLs (`postgresql://`, `postgres://`, or the `+pool` spellings) open a connection pool
(`ThreadPooledPostgresqlDatabase`): a thread's connection goes back to the pool when it closes it
(`database.connection_context()` in the job executor), and also when the thread ends without
closing it (Gradio runs handlers on short-lived worker threads that never close theirs). Pool
settings may be given in the URL's query string, for example
`postgresql://atelier@db/atelier?max_connections=40&stale_timeout=600`.

The schema is versioned by the numbered scripts in `storage/migrations/` (playhouse.migrations),
recorded in the table `schema_migration`. `migrate()` applies the pending ones, one process at a
time (PostgreSQL: an advisory lock; SQLite: one IMMEDIATE transaction), and refuses a database
that records a migration this code does not have (`SchemaTooNew`): it was made by a newer Atelier.
"""
from __future__ import annotations

import contextlib
import logging
import pathlib
import threading
import weakref
from urllib.parse import urlparse

from peewee import Database, DatabaseProxy, PostgresqlDatabase, SqliteDatabase
from playhouse.db_url import connect, parse
from playhouse.migrations import Runner
from playhouse.pool import PooledPostgresqlDatabase

logger = logging.getLogger(__name__)

database = DatabaseProxy()
MIGRATIONS = pathlib.Path(__file__).resolve().parent / "migrations"
SQLITE_PRAGMAS = {"journal_mode": "wal", "synchronous": "normal", "busy_timeout": 10000, "foreign_keys": 1}
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+pool", "postgres+pool")
# Per process. max_connections: connections open at once; stale_timeout: seconds after which an idle
# connection is closed rather than reused; timeout: seconds a thread waits for a free connection
# when all are taken, before MaxConnectionsExceeded.
POOL_DEFAULTS = {"max_connections": 20, "stale_timeout": 300, "timeout": 30}
# pg_advisory_lock key held while migrating: "ATLR" + "MIGR" as one 64-bit number.
MIGRATION_LOCK = 0x41544C524D494752


class SchemaTooNew(Exception):
    """The database records migrations this code does not have: a newer Atelier made it.

    Attributes: `location` (the database, without password), `unknown` (the names, in order) and
    `latest` (the newest migration this code has).
    """

    def __init__(self, location: str, unknown: list[str], latest: str):
        self.location, self.unknown, self.latest = location, unknown, latest
        names = ", ".join(unknown)
        super().__init__(f"The database at {location} has schema {names}, newer than this Atelier knows "
                         f"(latest {latest}); upgrade Atelier or point it at another database.")


class ThreadPooledPostgresqlDatabase(PooledPostgresqlDatabase):
    """`PooledPostgresqlDatabase` that also takes back the connection of a thread that ended.

    Peewee keeps each thread's connection checked out until that thread calls `close()`. A thread
    that ends first (an idle AnyIO worker thread after a Gradio handler, say) would hold its
    connection in the pool's books forever, and after `max_connections` of them every new thread
    would wait and fail. Each check-out first returns the connections of ended threads to the pool.
    """

    def __init__(self, *args, **kwargs):
        self._owners: dict[int, weakref.ref] = {}   # conn key -> the thread that checked it out
        super().__init__(*args, **kwargs)

    def _connect(self):
        with self._pool_lock:
            self.reclaim_orphans()
            conn = super()._connect()
            self._owners[self.conn_key(conn)] = weakref.ref(threading.current_thread())
            return conn

    def _close(self, conn, close_conn=False):
        with self._pool_lock:
            self._owners.pop(self.conn_key(conn), None)
            super()._close(conn, close_conn)

    def reclaim_orphans(self) -> int:
        """Return to the pool the connections checked out by threads that have ended; how many."""
        n = 0
        with self._pool_lock:
            for key, owner in list(self._owners.items()):
                thread = owner()
                if key not in self._in_use:
                    del self._owners[key]
                elif thread is None or not thread.is_alive():
                    logger.debug("connection %s: its thread ended without closing it; back to the pool", key)
                    self._close(self._in_use[key].connection)
                    n += 1
        return n


def connect_database(url: str) -> Database:
    """Return a database for `url` ("sqlite:///path.db", "postgresql://user:pw@host:5432/db", ...).

    SQLite gets the pragmas and lock type above; PostgreSQL a `ThreadPooledPostgresqlDatabase` with
    `POOL_DEFAULTS`, overridden by the URL's query string; anything else goes to `playhouse.db_url`.
    """
    if url.startswith("sqlite:///"):
        path = pathlib.Path(url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteDatabase(str(path), pragmas=SQLITE_PRAGMAS, lock_type="IMMEDIATE",
                              check_same_thread=False)
    if urlparse(url).scheme in POSTGRES_SCHEMES:
        kwargs = {**POOL_DEFAULTS, **parse(url, unquote_password=True, unquote_user=True)}
        if not kwargs.get("database"):
            raise ValueError(f'"{location(url)}" has no database name: postgresql://user@host:5432/dbname')
        return ThreadPooledPostgresqlDatabase(**kwargs)
    return connect(url)


def location(url_or_db) -> str:
    """Where a database is, for messages: its URL or path without the password."""
    if isinstance(url_or_db, SqliteDatabase):
        return f"sqlite:///{url_or_db.database}"
    if isinstance(url_or_db, Database):
        params = url_or_db.connect_params
        host = params.get("host", "localhost") + (f":{params['port']}" if params.get("port") else "")
        scheme = "postgresql" if isinstance(url_or_db, PostgresqlDatabase) else type(url_or_db).__name__
        return f"{scheme}://{host}/{url_or_db.database}"
    parsed = urlparse(url_or_db)
    if parsed.password:
        parsed = parsed._replace(netloc=parsed.netloc.replace(f":{parsed.password}@", ":***@", 1))
    return parsed.geturl()


def open_database(url: str) -> Database:
    """Connect to `url`, apply pending migrations, and point `database` at it. Returns the real database.

    Raises `SchemaTooNew` (and applies nothing) when a newer Atelier has migrated the database.
    """
    db = connect_database(url)
    applied = migrate(db)
    if applied:
        logger.info("database %s: applied migrations %s", location(db), ", ".join(applied))
    database.initialize(db)
    return db


def migrate(db: Database) -> list[str]:
    """Apply the migrations in storage/migrations that `db` has not had yet; returns their names.

    Other processes migrating the same database at the same time wait for this one to finish (and
    then find nothing to do). Raises `SchemaTooNew`, applying nothing, if `db` records a migration
    that storage/migrations lacks.
    """
    with db.connection_context(), _migration_lock(db):
        runner = Runner(db, str(MIGRATIONS))
        refuse_newer(db, _states(runner.status()))
        return runner.up()


def schema_status(db: Database) -> list[tuple[str, str]]:
    """Every migration as (name, state), in order; state is "applied", "pending" or "unknown" (newer)."""
    with db.connection_context():
        return _states(Runner(db, str(MIGRATIONS)).status())


def refuse_newer(db: Database, states: list[tuple[str, str]]) -> None:
    """Raise `SchemaTooNew` if `states` (from `schema_status`) has any "unknown" migration."""
    unknown = [name for name, state in states if state == "unknown"]
    if unknown:
        known = [name for name, state in states if state != "unknown"]
        raise SchemaTooNew(location(db), unknown, known[-1] if known else "none")


def _states(status) -> list[tuple[str, str]]:
    # Runner.status() rows: `path` is None for a recorded migration whose file is not here.
    return [(m.name, "unknown" if m.path is None else "applied" if m.applied else "pending") for m in status]


@contextlib.contextmanager
def _migration_lock(db: Database):
    """Hold a database-wide lock while migrating, on the connection already open in this thread."""
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            yield
        finally:
            db.execute_sql("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    elif isinstance(db, SqliteDatabase):
        # One IMMEDIATE transaction: another process waits (busy_timeout) and then sees the migrations
        # done. Foreign keys are switched off first, as SqliteMigrator does (the pragma is ignored
        # inside a transaction): rebuilding a table must not cascade-delete the rows that point at it.
        foreign_keys = db.pragma("foreign_keys")
        db.pragma("foreign_keys", 0)
        try:
            with db.atomic():
                yield
        finally:
            db.pragma("foreign_keys", foreign_keys)
    else:
        yield
