"""CityBrain OC composition root and command line: settings -> store -> scheduler -> Dash app.

    citybrain [run]               migrate, backfill new sources, start the scheduler (in-process
                                  unless the config says external) and serve the web app
    citybrain scheduler           run only the scheduler (one per deployment, beside web workers)
    citybrain ingest SOURCE_ID [--from FILE_OR_RANGE]  run one source once, or replay history
    citybrain db upgrade          apply the schema migrations
    citybrain rollups rebuild     recompute the hourly and daily rollups from the readings
    citybrain check-config [FILE] validate a deployment file; exit 1 listing every problem
    citybrain indicators list [--json]  the effective indicator catalog
    citybrain users ... / tokens ...    accounts, wall-screen display tokens and API tokens
    citybrain regions import (--adcode CODE | FILE) [--out PATH]  write a city's boundary file

`python app.py ...` is the same as `citybrain ...`. For gunicorn: `gunicorn 'app:create_wsgi()'`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.city import City, load_city
from core.settings import ConfigError, Settings, load_settings
from datasources.registry import option_problems
from indicators.catalog import DOMAINS, Catalog, load_catalog
from ingest.context import IngestContext
from store.db import make_engine, session_factory
from store.migrate import rollups_need_filling, upgrade
from store.sync import sync_all

log = logging.getLogger("citybrain")


def app_version() -> str:
    try:
        return package_version("citybrain-oc")
    except PackageNotFoundError:
        return "0.0.0+source"


@dataclass
class Deployment:
    settings: Settings
    city: City
    catalog: Catalog


def _cross_checks(settings: Settings, catalog: Catalog) -> list[str]:
    """Problems no single file can see: sources against adapters, screen keys against the catalog."""
    problems = []
    for index, source in enumerate(settings.sources):
        problems += option_problems(source.type, source.options, f"sources.{index} ({source.id})")
    problems += settings.screen.unknown_indicators(catalog)
    if settings.map.heatmap not in catalog:
        problems.append(f"map.heatmap: unknown indicator {settings.map.heatmap!r}")
    for domain in settings.composite_weights:
        if domain not in DOMAINS:
            problems.append(f"composite_weights.{domain}: unknown domain (known: {', '.join(DOMAINS)})")
    return problems


def load_deployment(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Deployment:
    """Everything the files say, checked together; raises ConfigError listing every problem.
    `environ` stands for the process environment (its overrides), e.g. another database URL."""
    settings = load_settings(path, environ)
    catalog = load_catalog(settings.indicator_catalogs)
    city = load_city(settings.city.boundaries, settings.city.stations)
    problems = _cross_checks(settings, catalog)
    if problems:
        raise ConfigError(Path(path or "config"), problems)
    return Deployment(settings, city, catalog)


def open_store(deployment: Deployment) -> tuple[Engine, sessionmaker[Session]]:
    """Migrate, then mirror the deployment's definitions into the store."""
    engine = migrate(deployment.settings)
    sessions = session_factory(engine)
    with sessions() as session:
        sync_all(session, deployment.city, deployment.catalog, deployment.settings.sources)
    return engine, sessions


def migrate(settings: Settings) -> Engine:
    """Upgrade the schema, then do the data work the upgrade leaves to the deployment: rollup
    tables just created beside stored readings are filled in the city's zone."""
    started = upgrade(settings.database.url)
    engine = make_engine(settings.database.url)
    if rollups_need_filling(started):
        rolled = rebuild_with_progress(engine, settings, "rollups from stored readings")
        print(f"rollups filled from {rolled:,} readings", flush=True)
    return engine


def rebuild_with_progress(engine: Engine, settings: Settings, description: str) -> int:
    """Both rollups recomputed from the readings, with a progress bar; returns the readings rolled up."""
    from tqdm import tqdm

    from store.rollups import rebuild_rollups

    with tqdm(desc=description, unit="series") as bar, engine.connect() as connection:

        def advance(done: int, total: int, readings: int) -> None:
            bar.total = total
            bar.update(done - bar.n)
            bar.set_postfix(readings=f"{readings:,}")

        return rebuild_rollups(connection, settings.tz, advance)


def ingest_context(deployment: Deployment, engine: Engine, sessions: sessionmaker[Session]) -> IngestContext:
    return IngestContext(deployment.settings, engine, sessions, deployment.city, deployment.catalog)


def create_wsgi(config: str | None = None):
    """The Flask server for gunicorn workers. Workers only read: `citybrain db upgrade` and the one
    `citybrain scheduler` migrate and sync, so several workers starting at once never race."""
    from web.app_factory import create_dash

    deployment = load_deployment(config)
    engine = make_engine(deployment.settings.database.url)
    return create_dash(deployment.settings, engine, deployment.city, deployment.catalog, app_version()).server


def ensure_demo_users(deployment: Deployment, sessions: sessionmaker[Session]) -> None:
    """Demo configs only: make the listed accounts exist and say how to sign in with them."""
    from store.users import ensure_demo_user

    users = deployment.settings.auth.demo_users
    if not users:
        return
    with sessions() as session:
        for user in users:
            ensure_demo_user(session, user.username, user.password, user.role)
        session.commit()
    listed = ", ".join(f"{u.role} {u.username} / {u.password}" for u in users)
    print(f"demo accounts (sign in at /login): {listed}", flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    from ingest.scheduler import backfill_new_sources, build_scheduler
    from web.app_factory import create_dash

    deployment = load_deployment(args.config)
    settings = deployment.settings
    engine, sessions = open_store(deployment)
    ensure_demo_users(deployment, sessions)
    ctx = ingest_context(deployment, engine, sessions)
    if settings.scheduler.mode == "inprocess":
        backfill_new_sources(ctx)
        build_scheduler(ctx).start()
    dash_app = create_dash(settings, engine, deployment.city, deployment.catalog, app_version(), ctx)
    port = args.port or settings.server.port
    print(f"CityBrain OC {app_version()}: http://{settings.server.host}:{port}/screen", flush=True)
    dash_app.run(host=settings.server.host, port=port, debug=settings.server.debug, threaded=True)
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    from ingest.scheduler import backfill_new_sources, build_scheduler

    deployment = load_deployment(args.config)
    engine, sessions = open_store(deployment)
    ctx = ingest_context(deployment, engine, sessions)
    backfill_new_sources(ctx)
    print("scheduler running; Ctrl+C stops it", flush=True)
    try:
        build_scheduler(ctx, blocking=True).start()
    except (KeyboardInterrupt, SystemExit):
        pass
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.pipeline import run_source

    deployment = load_deployment(args.config)
    engine, sessions = open_store(deployment)
    ctx = ingest_context(deployment, engine, sessions)
    if args.replay_from:
        return _replay(ctx, args.source_id, args.replay_from)
    result = run_source(ctx, args.source_id)
    print(
        f"{result.source_id}: {result.status} fetched={result.fetched} accepted={result.accepted} "
        f"rejected={result.rejected}" + (f" error={result.error}" if result.error else "")
    )
    return 0 if result.status in ("ok", "partial") else 1


def _replay(ctx: IngestContext, source_id: str, spec: str) -> int:
    from tqdm import tqdm

    from ingest.replay import ReplayError, replay

    with tqdm(desc=f"replay {source_id}", unit="run") as bar:

        def advance(done: int, total: int, result) -> None:
            bar.total = total
            bar.update(1)
            bar.set_postfix(accepted=result.accepted, rejected=result.rejected, status=result.status)

        try:
            results = replay(ctx, source_id, spec, advance)
        except ReplayError as exc:
            bar.close()
            print(f"error: {exc}", file=sys.stderr)
            return 2
    failed = [r for r in results if r.status not in ("ok", "partial")]
    print(
        f"{source_id}: {len(results)} run(s), fetched={sum(r.fetched for r in results)} "
        f"accepted={sum(r.accepted for r in results)} rejected={sum(r.rejected for r in results)}"
        + (f", {len(failed)} failed: {failed[0].error}" if failed else "")
    )
    return 1 if failed else 0


def cmd_db(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    migrate(settings).dispose()
    print(f"database at {settings.database.url.split('@')[-1]} is at the latest schema")
    return 0


def cmd_rollups(args: argparse.Namespace) -> int:
    """Recompute the hourly and daily rollups from the readings (after a bulk load around the
    pipeline, or a change of the city's zone)."""
    deployment = load_deployment(args.config)
    engine, _ = open_store(deployment)
    rolled = rebuild_with_progress(engine, deployment.settings, "rollups rebuild")
    engine.dispose()
    print(f"rollups rebuilt from {rolled:,} readings")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    deployment = load_deployment(args.file or args.config)
    print(
        f"ok: {len(deployment.catalog)} indicators, {len(deployment.city.regions)} regions, "
        f"{len(deployment.city.stations)} stations, {len(deployment.settings.sources)} sources"
    )
    return 0


def cmd_indicators(args: argparse.Namespace) -> int:
    deployment = load_deployment(args.config)
    catalog = deployment.catalog
    if args.json:
        print(
            json.dumps(
                [i.model_dump(mode="json", by_alias=True) for i in catalog], ensure_ascii=False, indent=1
            )
        )
        return 0
    for indicator in catalog:
        rules = ", ".join(key.rsplit(":", 1)[1] for key in indicator.rule_keys()) or "-"
        print(
            f"{indicator.key:32} {indicator.domain:16} {indicator.level:9} {indicator.unit or '-':10} "
            f"{indicator.classification:11} {rules:38} {indicator.name.zh} / {indicator.name.en}"
        )
    return 0


def _new_password(args: argparse.Namespace) -> str:
    """From stdin for scripts, else asked twice without echo; never taken from the command line."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("the two passwords differ; nothing changed")
    return first


def cmd_users(args: argparse.Namespace) -> int:
    from store import audit, users

    deployment = load_deployment(args.config)
    _, sessions = open_store(deployment)
    with sessions() as session:
        try:
            if args.action == "add":
                users.create_user(
                    session, args.username, _new_password(args), args.role, args.name or "", args.department
                )
            elif args.action == "passwd":
                users.set_password(session, args.username, _new_password(args))
            elif args.action in ("disable", "enable"):
                users.set_disabled(session, args.username, args.action == "disable")
            elif args.action == "role":
                users.set_role(session, args.username, args.role)
            else:
                for user in users.list_users(session):
                    state = "disabled" if user.disabled else "active"
                    department = user.department or "-"
                    print(f"{user.username:20} {user.role:8} {state:8} {department:12} {user.display_name}")
                return 0
        except users.UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        audit.record(session, "cli", f"users.{args.action}", args.username, getattr(args, "role", "") or "")
        session.commit()
    print(f"{args.action}: {args.username} done")
    return 0


def cmd_tokens(args: argparse.Namespace) -> int:
    from store import audit, users

    deployment = load_deployment(args.config)
    _, sessions = open_store(deployment)
    with sessions() as session:
        try:
            if args.action == "add":
                owner = None
                if args.kind == "api":
                    user = users.find_user(session, args.user or "")
                    if user is None:
                        raise users.UserError(f"an API token acts for a user: no user {args.user!r}")
                    owner = user.id
                token, plain = users.create_token(session, args.kind, args.name, owner)
                print(f"token {token.id} ({args.kind}, {args.name}); shown once, keep it safe:\n{plain}")
                if args.kind == "display":
                    print(f"wall screen address: /screen?display={plain}")
            elif args.action == "revoke":
                if not users.revoke_token(session, args.id):
                    raise users.UserError(f"no live token {args.id}")
                print(f"token {args.id} revoked")
            else:
                for token in users.list_tokens(session):
                    state = "revoked" if token.revoked_at else "live"
                    print(f"{token.id:5} {token.kind:8} {state:8} {token.name}")
                return 0
        except users.UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        audit.record(session, "cli", f"tokens.{args.action}", str(getattr(args, "id", "") or args.name))
        session.commit()
    return 0


def _account_commands(commands: argparse._SubParsersAction) -> None:
    from core.settings import ROLES

    accounts = commands.add_parser("users", help="user accounts: add, passwd, role, disable, enable, list")
    actions = accounts.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add")
    add.add_argument("username")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--name", help="display name")
    add.add_argument("--department", help="the department the user works for")
    passwd = actions.add_parser("passwd")
    passwd.add_argument("username")
    for parser_ in (add, passwd):
        parser_.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    role = actions.add_parser("role")
    role.add_argument("username")
    role.add_argument("--role", choices=ROLES, required=True)
    for name in ("disable", "enable"):
        actions.add_parser(name).add_argument("username")
    actions.add_parser("list").set_defaults(username="")
    accounts.set_defaults(func=cmd_users)

    tokens = commands.add_parser("tokens", help="display tokens for wall screens and API tokens")
    token_actions = tokens.add_subparsers(dest="action", required=True)
    add_token = token_actions.add_parser("add")
    add_token.add_argument("kind", choices=("display", "api"))
    add_token.add_argument("name", help="what the token is for, e.g. 'wall 1, duty room'")
    add_token.add_argument("--user", help="the user an API token acts for")
    token_actions.add_parser("revoke").add_argument("id", type=int)
    token_actions.add_parser("list").set_defaults(name="")
    tokens.set_defaults(func=cmd_tokens)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="citybrain", description="CityBrain Operations Center")
    root.add_argument("--config", help="deployment YAML (default: $CITYBRAIN_CONFIG or config/demo.yaml)")
    commands = root.add_subparsers(dest="command")
    run = commands.add_parser("run", help="serve the web app (default)")
    run.add_argument("--port", type=int)
    run.set_defaults(func=cmd_run)
    commands.add_parser("scheduler", help="run only the scheduler").set_defaults(func=cmd_scheduler)
    ingest = commands.add_parser("ingest", help="run one source once")
    ingest.add_argument("source_id")
    ingest.add_argument(
        "--from",
        dest="replay_from",
        metavar="FILE_OR_RANGE",
        help="replay history: a file or folder the source's adapter reads, or a range such as 7d or "
        "2026-11-01..2026-11-20 (city time); the live feed's position is kept",
    )
    ingest.set_defaults(func=cmd_ingest)
    db = commands.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade"])
    db.set_defaults(func=cmd_db)
    indicators = commands.add_parser("indicators", help="the effective indicator catalog")
    indicators.add_argument("action", choices=["list"])
    indicators.add_argument("--json", action="store_true", help="machine-readable, for scripts")
    indicators.set_defaults(func=cmd_indicators)
    rollups = commands.add_parser("rollups", help="hourly and daily rollups of the readings")
    rollups.add_argument("action", choices=["rebuild"])
    rollups.set_defaults(func=cmd_rollups)
    _account_commands(commands)
    from datasources import regions_cli

    regions_cli.add_arguments(commands)
    check = commands.add_parser("check-config", help="validate a deployment file")
    check.add_argument("file", nargs="?")
    check.set_defaults(func=cmd_check_config)
    return root


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    args = parser().parse_args(argv)
    if args.command is None:
        args.func, args.port = cmd_run, None
    try:
        return args.func(args)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
