# ruff: noqa: T201 - a command-line tool: it prints what it did
"""user: listener accounts for the OpenSubsonic server (Mongo ``users``; a user's name is their listener id).

./spark-submit.sh user add NAME [--password PW]   # prints a generated password when none is given, and an API key
./spark-submit.sh user list
./spark-submit.sh user remove NAME
./spark-submit.sh user reset NAME [--password PW] # a new password and a new API key
"""

from __future__ import annotations

import argparse
import re

from api import credentials
from conf.errors import JobInputError
from conf.settings import Settings
from connectors import mongo_io, users
from connectors.services import require_mongo

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("add", "list", "remove", "reset"))
    parser.add_argument("name", nargs="?")
    parser.add_argument("--password", help="default: a generated one, printed once")


def fresh_credentials(settings: Settings, name: str) -> tuple[str, str]:
    """(password, API key): the account ``name`` made, or given new credentials when it exists (the demo's)."""
    secret = credentials.server_secret(settings.paths.state_root)
    stored, password, api_key = credentials.new_credentials(secret, None)
    with mongo_io.connect(settings) as client:
        db = mongo_io.database(client, settings)
        if not users.replace_credentials(db, name, stored):
            users.add(db, name, stored)
    return password, api_key


def main(settings: Settings, args: argparse.Namespace) -> int:
    require_mongo(settings)
    if args.action != "list" and not args.name:
        raise JobInputError(f"user {args.action} needs a NAME")
    if args.name and not NAME.match(args.name):
        raise JobInputError(f"{args.name!r} is not a user name: letters, digits and . _ @ -, at most 64")
    secret = credentials.server_secret(settings.paths.state_root)
    with mongo_io.connect(settings) as client:
        db = mongo_io.database(client, settings)
        if args.action == "list":
            for name in users.names(db):
                print(name)
            return 0
        if args.action == "remove":
            if not users.remove(db, args.name):
                raise JobInputError(f"no user {args.name!r}")
            print(f"user: removed {args.name}")
            return 0
        stored, password, api_key = credentials.new_credentials(secret, args.password)
        try:
            if args.action == "add":
                users.add(db, args.name, stored)
            elif not users.replace_credentials(db, args.name, stored):
                raise JobInputError(f"no user {args.name!r}")
        except ValueError as exc:
            raise JobInputError(str(exc)) from exc
    shown = password if not args.password else "(as given)"
    print(f"user: {args.name}  password: {shown}  API key: {api_key}")
    return 0
