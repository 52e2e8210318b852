"""Account commands against the configured database (configs/default.toml plus ATELIER_* variables):

    python -m auth.cli create-user EMAIL [--password P] [--role R] [--tier T] [--credits N] [--api-key]
    python -m auth.cli prune-guests [--days N]

`create-user` is how the first admin is made; with --api-key it prints a new API key as its last
line. `prune-guests` deletes guest accounts older than N days (default 30) that never made anything.
"""
from __future__ import annotations

import argparse
import getpass
import sys

from auth import api_keys, credits
from auth.accounts import Accounts
from configs import load_settings, load_tiers
from pipelines.errors import AtelierError
from storage.db import SchemaTooNew, open_database
from storage.models import ROLES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auth.cli", description="Manage Atelier accounts.")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-user", help="create an account")
    create.add_argument("email")
    create.add_argument("--password", help="its password (asked for when omitted and a terminal is attached; "
                                           "without one the account can only use API keys)")
    create.add_argument("--role", default="user", choices=ROLES)
    create.add_argument("--tier", help="its tier (default: the first tier in tiers.toml)")
    create.add_argument("--credits", type=float, default=0.0, help="credits to grant on top of the tier's monthly ones")
    create.add_argument("--api-key", action="store_true", help="also create an API key and print it last")
    prune = commands.add_parser("prune-guests", help="delete old guests that never made anything")
    prune.add_argument("--days", type=float, default=30.0, help="only guests older than this (default 30)")
    args = parser.parse_args(argv)

    settings = load_settings()
    try:
        open_database(settings.resolved_database_url)
    except SchemaTooNew as e:
        raise SystemExit(str(e)) from None
    accounts = Accounts(load_tiers(settings.tiers))
    if args.command == "prune-guests":
        print(f"deleted {accounts.prune_guests(args.days)} guest(s)")
        return 0
    password = args.password
    if password is None and sys.stdin.isatty():
        password = getpass.getpass(f"Password for {args.email}: ")
    try:
        user = accounts.create_user(args.email, password or None, role=args.role, tier=args.tier,
                                    credits_=args.credits)
    except AtelierError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2
    print(f"created user {user.id}: {user.email} (role {user.role}, tier {user.tier}, balance {credits.balance(user):g})")
    if args.api_key:
        print(api_keys.create_key(user, "created by auth.cli")[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
