"""alertd users add NAME: dashboard logins (the password is stored only as a scrypt hash)."""
from __future__ import annotations

import getpass
import sys

from ..clock import SystemClock
from .load import load_config, store_of


async def cmd_users(args) -> int:
    cfg = load_config(args)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"Password for {args.name}: ")
        if getpass.getpass("Again: ") != password:
            print("the passwords differ; nothing changed", file=sys.stderr)
            return 1
    if len(password) < 8:
        print("the password must have at least 8 characters; nothing changed", file=sys.stderr)
        return 1
    # here, not at the top: alertd.ui's package imports the whole dashboard and FastAPI,
    # which every command (`alertd run` too, before it sets up) paid for at start
    from ..ui.auth import hash_password
    created = await (await store_of(cfg)).users.add(args.name, hash_password(password), SystemClock().timestamp())
    print(f"user '{args.name}' {'added' if created else 'password changed (its sessions ended)'}")
    return 0


def add_parsers(sub, common) -> None:
    users = sub.add_parser("users", parents=[common], help="manage dashboard logins")
    us = users.add_subparsers(dest="users_cmd", required=True)
    add = us.add_parser("add", parents=[common], help="add a user, or set a user's password")
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    users.set_defaults(func=cmd_users)
