"""Administration: `grader migrate`, `api-key`, `budget`, `settings` and `db` (the embedded
PostgreSQL)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from essay_grader.cli.arguments import cap
from essay_grader.cli.output import emit
from grader.errors import GraderError

if TYPE_CHECKING:
    from grader.settings import Settings


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from grader.store.connections import migrate_database

    applied = migrate_database(settings)
    emit(
        args,
        {"applied": applied},
        "\n".join(f"applied {name}" for name in applied) or "database schema is up to date",
    )
    return 0


def add_migrate(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser("migrate", parents=[output], help="apply pending database migrations")
    p.set_defaults(func=cmd_migrate)


def cmd_api_key(args: argparse.Namespace, settings: Settings) -> int:
    from grader.store import api_keys
    from grader.store.connections import connect

    with connect(settings) as conn:
        if args.action == "create":
            if not args.name:
                raise GraderError("give the key a name: grader api-key create NAME")
            key, record = api_keys.create_key(conn, args.name)
            emit(
                args,
                {**record, "key": key},
                f"{key}\n(shown once: store it now; it is sent as 'Authorization: Bearer <key>')",
            )
        elif args.action == "revoke":
            if not args.name:
                raise GraderError("name the key to revoke by its id or prefix")
            record = api_keys.revoke_key(conn, args.name)
            emit(args, record, f"revoked {record['key_prefix']}… ({record['name']})")
        else:
            keys = api_keys.list_keys(conn)
            emit(
                args,
                keys,
                "\n".join(
                    f"{k['key_prefix']}…  {k['name']:<24} created {k['created_at']:%Y-%m-%d}"
                    + (f", revoked {k['revoked_at']:%Y-%m-%d}" if k["revoked_at"] else "")
                    for k in keys
                )
                or "no API keys",
            )
    return 0


def add_api_key(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser("api-key", parents=[output], help="create, list or revoke API keys")
    p.add_argument("action", choices=["create", "list", "revoke"])
    p.add_argument("name", nargs="?", help="a name for a new key; the id or prefix to revoke")
    p.set_defaults(func=cmd_api_key)


def cmd_budget(args: argparse.Namespace, settings: Settings) -> int:
    from grader.store import spending
    from grader.store.connections import connect

    with connect(settings) as conn:
        for period in ("daily", "monthly"):
            value = getattr(args, period)
            if value is not False:
                spending.set_cap(conn, period, value)
        summary = spending.spending(conn)
    emit(args, summary, spending.format_spending(summary))
    return 0


def add_budget(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "budget", parents=[output], help="show spending; set daily and monthly caps in USD"
    )
    p.add_argument(
        "--daily", type=cap, default=False, metavar="USD", help="daily cap ('none' removes it)"
    )
    p.add_argument(
        "--monthly", type=cap, default=False, metavar="USD", help="monthly cap ('none' removes it)"
    )
    p.set_defaults(func=cmd_budget)


def cmd_settings(args: argparse.Namespace, settings: Settings) -> int:
    described = settings.describe()
    emit(args, described, "\n".join(f"{name:<20} {value}" for name, value in described.items()))
    return 0


def add_settings(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "settings", parents=[output], help="show the settings in effect (secrets redacted)"
    )
    p.set_defaults(func=cmd_settings)


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from grader.store.embedded import stop_embedded

    if settings.database_url:
        raise GraderError("DATABASE_URL is set: the grader does not manage that server")
    stopped = stop_embedded(settings)
    print(f"stopped the embedded PostgreSQL in {settings.pgdata}" if stopped else "not running")
    return 0


def add_db(sub: argparse._SubParsersAction, output: argparse.ArgumentParser) -> None:
    p = sub.add_parser("db", help="manage the embedded PostgreSQL")
    p.add_argument("action", choices=["stop"])
    p.set_defaults(func=cmd_db)
