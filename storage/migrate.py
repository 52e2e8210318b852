"""`python -m storage.migrate`: apply pending database migrations (the app also does it at start)."""
import logging

from configs import load_settings
from storage.db import connect_database, migrate


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    applied = migrate(connect_database(settings.resolved_database_url))
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))


if __name__ == "__main__":
    main()
