"""`python -m storage.migrate [--status] [--url URL]`: bring the database's schema up to date.

Applies the pending migrations in storage/migrations (the app and the workers also do it when they
start) and prints their names; `--status` lists every migration as applied or pending and changes
nothing. Either way it exits with status 1 and says so when the database was migrated by a newer
Atelier than this one. The database is the one the settings name (ATELIER_DATABASE_URL, or SQLite
in ATELIER_DATA_DIR) unless `--url` gives another.
"""
from __future__ import annotations

import argparse
import logging
import sys

from configs import load_settings
from storage.db import SchemaTooNew, connect_database, location, migrate, refuse_newer, schema_status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m storage.migrate", description=__doc__.splitlines()[0])
    parser.add_argument("--status", action="store_true", help="list applied and pending migrations; apply nothing")
    parser.add_argument("--url", default="", help="database URL; default: the one the settings name")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    db = connect_database(args.url or load_settings().resolved_database_url)
    try:
        print(f"database: {location(db)}")
        if args.status:
            rows = schema_status(db)
            for name, state in rows:
                print(f"{state:8} {name}")
            refuse_newer(db, rows)
        else:
            applied = migrate(db)
            print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    except SchemaTooNew as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
