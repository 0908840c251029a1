"""The `cmdcenter` command line: serve, demo, feeds, units, boundaries, brief, simulate."""

from __future__ import annotations

import sys

from command import green

green.patch_for_serving()  # serve/demo: gevent, before anything else is imported

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402

from command import config as config_mod  # noqa: E402

log = logging.getLogger("cmdcenter")


def main(argv: list[str] | None = None) -> int:
    """Entry point; every person-facing error is one line on stderr and exit status 2."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        from command.ops import logs

        logs.configure(os.environ.get("CMDCENTER_LOG"), os.environ.get("CMDCENTER_LOG_FORMAT"))
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - turned into one clear line below
        message = _explain(exc)
        if message is None:
            raise
        print(f"cmdcenter: error: {message}", file=sys.stderr)
        return 2


def _explain(exc: Exception) -> str | None:
    """One line for errors a person can fix; None for bugs (which keep their traceback)."""
    import redis
    import sqlalchemy.exc

    from command.errors import DomainError, NotFound
    from layers.importer import BoundaryImportError

    if isinstance(exc, (config_mod.ConfigError, NotFound, BoundaryImportError)):
        return str(exc)
    if isinstance(exc, DomainError):
        return exc.message
    if isinstance(exc, sqlalchemy.exc.ArgumentError):
        return f"bad database URL: {exc}"
    if isinstance(exc, sqlalchemy.exc.OperationalError):
        return f"cannot use the database: {str(exc.orig).strip().splitlines()[0]}"
    if isinstance(exc, redis.RedisError):
        return f"cannot use Redis: {exc}"
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or exc}"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return None


def _settings(args, **extra) -> config_mod.Settings:
    return config_mod.load(data_dir=getattr(args, "data_dir", None), **extra)


def _core(args, **kwargs):
    from command.core import Core

    return Core(_settings(args), **kwargs)


# --- serve / demo -------------------------------------------------------------------------------

def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise config_mod.ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror} "
                f"(is cmdcenter already running? choose another with --port)") from None


def _positive(value: str) -> float:
    """A number > 0 (the demo's rate and situation gap)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {value!r}") from None
    if not 0 < number < float("inf"):  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be more than 0, got {value}")
    return number


def cmd_serve(args, *, demo: bool = False) -> int:
    workers = getattr(args, "workers", None)
    if workers is not None:
        return cmd_serve_workers(args, workers)
    from command.web.app import create_app, run_background, serve

    settings = _settings(args, host=args.host, port=args.port, node=getattr(args, "node", None))
    _check_port(settings.host, settings.port)
    # the demo writes its past first: the background jobs would see matters half way through
    app, core = create_app(settings, start_background=not demo, async_mode="gevent")
    url = f"http://{settings.host}:{settings.port}"
    before_close = []
    print(f"cmdcenter: data in {config_mod.mask_url(settings.db_url)}", flush=True)
    if demo:
        from command.demo.feeds import ensure_demo_users, start_demo_feeds

        feeds = start_demo_feeds(core, url, rate=args.rate, situations=not args.no_situations,
                                 every_minutes=args.situations_every)
        before_close.append(feeds.close)
        for line in feeds.lines():
            print(line, flush=True)
        print("cmdcenter: demo users (passwords are new at every start):", flush=True)
        for name, role, unit, password in ensure_demo_users(core):
            print(f"  {name:<10} {password}   {role}{' · ' + unit if unit else ''}", flush=True)
        run_background(core, settings)
    print(f"cmdcenter: wall screen at {url}/  (Ctrl+C to stop)", flush=True)
    try:
        serve(app, settings, core, before_close=before_close)
    finally:
        core.close()
    return 0


def cmd_serve_workers(args, workers: int) -> int:
    """N supervised server processes on ports P … P+N−1 (see command.ops.workers)."""
    from command.core import Core
    from command.ops.workers import Launcher, check_shared

    settings = _settings(args, host=args.host, port=args.port, node=args.node)
    check_shared(settings)
    if workers < 1:
        raise config_mod.ConfigError(f"--workers must be 1 or more, got {workers}")
    for i in range(workers):
        _check_port(settings.host, settings.port + i)
    Core(settings).close()  # migrate (and seed) once, before any worker starts
    launcher = Launcher(settings, workers, node=settings.node or "n",
                        data_dir=getattr(args, "data_dir", None))
    return launcher.run()


def cmd_migrate(args) -> int:
    """Bring the database's schema to this version (and seed a fresh one), then exit."""
    from command.core import Core
    from command.db import last_revision

    settings = _settings(args)
    core = Core(settings)
    try:
        revision = last_revision(core.engine)
    finally:
        core.close()
    print(f"cmdcenter: schema at revision {revision} in {config_mod.mask_url(settings.db_url)}")
    return 0


# --- feeds ----------------------------------------------------------------------------------------

def cmd_feeds_add(args) -> int:
    from command.feeds import service

    core = _core(args)
    with core.write() as session, session.begin():
        feed, token = service.create(session, name=args.name, unit_code=args.unit,
                                     now=core.clock.now())
    if args.json:
        print(json.dumps({"name": feed.name, "unit": feed.unit_code, "token": token},
                         ensure_ascii=False))
    else:
        print(f"feed {feed.name!r} registered for unit {feed.unit_code}.")
        print("Its token is shown only now; keep it secret:")
        print(token)
    return 0


def cmd_feeds_list(args) -> int:
    from command.feeds import service

    core = _core(args)
    with core.read() as session:
        feeds = service.get_all(session)
    if args.json:
        print(json.dumps([f.as_dict() for f in feeds], ensure_ascii=False))
        return 0
    if not feeds:
        print("no feeds yet: add one with `cmdcenter feeds add NAME --unit CODE`")
    for f in feeds:
        state = "revoked" if f.revoked_at else (f"disabled: {f.disabled_reason}"
                                                 if f.disabled_reason else "active")
        print(f"{f.name}\t{f.unit_code}\t{state}")
    return 0


def cmd_feeds_revoke(args) -> int:
    from command.feeds import service

    core = _core(args)
    with core.write() as session, session.begin():
        service.revoke(session, name=args.name, now=core.clock.now())
    print(f"feed {args.name!r} revoked")
    return 0


def cmd_feeds_bind(args) -> int:
    from command.feeds import service

    core = _core(args)
    with core.write() as session, session.begin():
        feed = service.rebind(session, name=args.name, unit_code=args.unit)
    print(f"feed {feed.name!r} bound to {feed.unit_code} and active")
    return 0


# --- users ----------------------------------------------------------------------------------------

def _read_password(args) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise config_mod.ConfigError("no terminal to ask for a password: use --password-stdin")
    import getpass

    first = getpass.getpass("password (at least 8 characters): ")
    if first != getpass.getpass("again: "):
        raise config_mod.ConfigError("the two passwords differ")
    return first


def _dept_code(session, value: str) -> str:
    from command.errors import NotFound
    from command.units import service as units_service

    for unit in units_service.get_all(session):
        if unit["level"] == "dept" and value in (unit["code"], unit["name"],
                                                  unit["code"].removeprefix("dept.")):
            return unit["code"]
    raise NotFound(f"no department {value!r} (see `cmdcenter units list --level dept`)")


def cmd_users_add(args) -> int:
    from command.users import service

    core = _core(args)
    password = _read_password(args)
    with core.write() as session, session.begin():
        unit = _dept_code(session, args.dept) if args.dept else args.unit
        user = service.create(session, name=args.name, role=args.role, unit_code=unit,
                              password=password, now=core.clock.now())
    where = f" of {user.unit_code}" if user.unit_code else ""
    print(f"user {user.name!r} added: {user.role}{where}")
    return 0


def cmd_users_token(args) -> int:
    from command.users import service

    core = _core(args)
    with core.write() as session, session.begin():
        token = service.issue_token(session, name=args.name)
    print(f"personal API token of {args.name!r} (the previous one stops working):")
    print(token)
    return 0


def cmd_users_list(args) -> int:
    from command.users import service

    core = _core(args)
    with core.read() as session:
        users = service.get_all(session)
    if args.json:
        print(json.dumps([u.as_dict() for u in users], ensure_ascii=False))
        return 0
    if not users:
        print("no users yet: add one with `cmdcenter users add NAME --role R`")
    for u in users:
        state = "disabled" if u.disabled else ("must change password" if u.must_change_password
                                               else "active")
        print(f"{u.name}\t{u.role}\t{u.unit_code or ''}\t{u.display_name or ''}\t"
              f"{u.masked_phone or ''}\t{state}")
    return 0


def cmd_users_import(args) -> int:
    from pathlib import Path

    from command.clock import Clock
    from command.users import flows, importer, sheet

    path = Path(args.file).expanduser()
    sheet.check_format(path)  # mistakes are found before the data dir is touched
    if not path.is_file():
        raise FileNotFoundError(2, "No such file", str(path))
    out = Path(args.passwords).expanduser() if args.passwords else \
        flows.default_passwords_path(Clock().now().astimezone())
    core = _core(args)
    try:
        done, plan, written = flows.import_users(core, path, passwords_path=out)
    except importer.ImportRefused as refused:
        for error in refused.errors:
            print(f"{path.name}: {error}", file=sys.stderr)
        print(f"cmdcenter: error: {len(refused.errors)} mistake(s) in {path.name}: nothing was "
              "imported", file=sys.stderr)
        return 2
    finally:
        core.close()
    print(f"users import: {len(done.created)} new, {done.updated} changed, {done.unchanged} "
          "unchanged")
    if plan.ignored_columns:
        print(f"ignored columns: {', '.join(plan.ignored_columns)}")
    if written is None:
        print("no new accounts: no password file written")
        return 0
    print("first passwords of the new accounts (each must change it at the first sign-in); "
          "the file is readable by you only — hand the passwords out, then delete it:")
    print(written.resolve())  # the last line: where the passwords are
    return 0


def cmd_users_export(args) -> int:
    from pathlib import Path

    from command.users import flows, sheet

    path = Path(args.file).expanduser()
    sheet.check_format(path)
    if path.exists():
        raise FileExistsError(17, "File exists (choose another name)", str(path))
    core = _core(args)
    try:
        written, count = flows.export_users(core, path)
    finally:
        core.close()
    print(f"{count} users written (phones masked, no passwords)")
    print(written.resolve())
    return 0


def cmd_users_disable(args) -> int:
    from command.users import service

    core = _core(args)
    with core.write() as session, session.begin():
        service.disable(session, name=args.name, now=core.clock.now())
    print(f"user {args.name!r} disabled")
    return 0


def cmd_users_password(args) -> int:
    from command.users import service

    core = _core(args)
    password = _read_password(args)
    with core.write() as session, session.begin():
        service.set_password(session, name=args.name, password=password)
    print(f"password of {args.name!r} set")
    return 0


# --- units / boundaries ---------------------------------------------------------------------------

def cmd_units_list(args) -> int:
    from command.units import service

    core = _core(args)
    with core.read() as session:
        units = service.get_all(session)
    if args.level:
        units = [u for u in units if u["level"] == args.level]
    if args.json:
        print(json.dumps(units, ensure_ascii=False))
    else:
        for u in units:
            print(f"{u['code']}\t{u['level']}\t{u['name']}\t{u['parent'] or ''}")
    return 0


def cmd_boundaries_import(args) -> int:
    from tqdm import tqdm

    from command.units.flows import import_boundaries

    core = _core(args)
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if total < 500:
            return
        if bar is None:
            bar = tqdm(total=total, unit="feature", file=sys.stderr, leave=False)
        bar.n = done
        bar.refresh()

    try:
        summary = import_boundaries(
            core, args.path, level=args.level, code_field=args.code_field,
            name_field=args.name_field, parent_field=args.parent_field, layer=args.layer,
            crs=args.crs, repair=not args.no_repair, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    for line in summary.lines():
        print(line)
    return 0


# --- brief ----------------------------------------------------------------------------------------

def cmd_brief(args) -> int:
    from pathlib import Path

    from command.briefing import flows

    if (args.period is None) == (args.incident is None):
        raise config_mod.ConfigError("give --period day|week|month, or --incident ID")
    if args.incident is not None and args.date is not None:
        raise config_mod.ConfigError("--date goes with --period, not with --incident")
    # mistakes are found before the data dir is touched
    flows.check_format(args.format)
    if args.period is not None:
        from command.briefing import periods
        from command.clock import Clock

        periods.parse(args.period, args.date, now=Clock().now())
    out = Path(args.out).expanduser() if args.out else None
    core = _core(args)
    try:
        if args.incident is not None:
            made = flows.make_incident(core, incident_id=args.incident, fmt=args.format,
                                       by="cli", out=out)
        else:
            made = flows.make_period(core, kind=args.period, date=args.date, fmt=args.format,
                                     out=out)
    finally:
        core.close()
    print(made.display_name)
    print(made.path.resolve())  # the last line: where the file is
    return 0


# --- history --------------------------------------------------------------------------------------

def cmd_seed_history(args) -> int:
    from tqdm import tqdm

    from command.errors import DomainError
    from command.demo.history import check_args, seed_history

    def number(value: str, name: str, kind=int):
        try:
            return kind(value)
        except ValueError:
            raise DomainError("invalid_field", f"{name}: must be a number, got {value!r}",
                              name) from None

    # checked before the data dir is touched: a mistake changes nothing
    weeks, seed, per_day = check_args(weeks=number(args.weeks, "weeks"),
                                      seed=number(args.seed, "seed"),
                                      per_day=number(args.per_day, "per_day", float))
    core = _core(args)
    bar = tqdm(total=None, unit="h", desc="seeding history", file=sys.stderr, leave=False)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        summary = seed_history(core, weeks=weeks, seed=seed, per_day=per_day, progress=progress)
        window = None
        if args.matters:
            from command.demo.matters import seed_matters

            window = seed_matters(core, seed=seed)
    finally:
        bar.close()
        core.close()
    for line in summary.lines():
        print(line)
    if window is not None:
        print(window.line().removeprefix("cmdcenter: "))
    return 0


# --- backup / restore -----------------------------------------------------------------------------

def cmd_backup(args) -> int:
    from pathlib import Path

    from command.clock import Clock
    from command.ops import backup

    settings = _settings(args)
    made = backup.backup(settings, Path(args.out), include_key=args.include_key,
                         now=Clock().now().astimezone())
    for line in made.lines():
        print(line)
    print(made.path.resolve())  # the last line: the archive
    return 0


def cmd_restore(args) -> int:
    from pathlib import Path

    from command.ops import restore

    settings = _settings(args)
    key_file = Path(args.key_file).expanduser() if args.key_file else None
    done = restore.restore(settings, Path(args.file), key_file=key_file)
    for line in done.lines():
        print(line)
    return 0


# --- simulate -------------------------------------------------------------------------------------

def cmd_simulate(args) -> int:
    from command.demo.simulate import run

    stats = run(args.url, args.token, rate=args.rate, count=args.count)
    print(stats.summary())
    return 0 if stats.connected else 2


def _parser() -> argparse.ArgumentParser:
    from command.users.models import ROLES

    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: given before or after the subcommand, neither place overwrites the other
    common.add_argument("--data-dir", default=argparse.SUPPRESS,
                        help="where the data lives (default ./data, or CMDCENTER_DATA_DIR)")
    parser = argparse.ArgumentParser(
        prog="cmdcenter", parents=[common],
        description="县级社会治理指挥中心 — county command center. "
                    "CMDCENTER_DATABASE_URL / CMDCENTER_REDIS_URL switch to PostgreSQL / Redis.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, func, help_text, parent=sub):
        p = parent.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    for name, demo, text in (("serve", False, "run the server"),
                             ("demo", True, "run the server with simulated township feeds")):
        p = add(name, (lambda a, d=demo: cmd_serve(a, demo=d)), text)
        p.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
        p.add_argument("--port", type=int, default=None, help="port (default 8050)")
        p.add_argument("--node", default=None, metavar="NAME",
                       help="this process's name in the Socket.IO session ids it issues, for "
                            "nginx to route by (letters and digits; default CMDCENTER_NODE); "
                            "with --workers, the children are NAME0, NAME1, … (default n)")
        if not demo:
            p.add_argument("--workers", type=int, default=None, metavar="N",
                           help="run N server processes on ports PORT … PORT+N−1 behind nginx, "
                                "supervised (needs PostgreSQL and Redis; see deploy/)")
        if demo:
            p.add_argument("--rate", type=_positive, default=None, metavar="R",
                           help="ordinary traffic in reports/s, drawn from the history's model "
                                "(default: the stored history's rate; 240 a day on a first "
                                "start, when the history is seeded at it)")
            p.add_argument("--situations-every", type=_positive, default=10.0, metavar="MIN",
                           help="mean minutes between scripted situations (default 10)")
            p.add_argument("--no-situations", action="store_true",
                           help="ordinary traffic only: no scripted gatherings, bursts, "
                                "emergencies or repeat places")

    feeds = sub.add_parser("feeds", help="feeds: add, list, revoke, bind")
    fsub = feeds.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    p = add("add", cmd_feeds_add, "register a feed for a unit and print its token", fsub)
    p.add_argument("name")
    p.add_argument("--unit", required=True, help="unit code (see `cmdcenter units list`)")
    p.add_argument("--json", action="store_true", help='print {"name","unit","token"}')
    p = add("list", cmd_feeds_list, "list feeds", fsub)
    p.add_argument("--json", action="store_true")
    p = add("revoke", cmd_feeds_revoke, "revoke a feed's token", fsub)
    p.add_argument("name")
    p = add("bind", cmd_feeds_bind, "bind a feed to another unit (re-enables it)", fsub)
    p.add_argument("name")
    p.add_argument("--unit", required=True)

    users = sub.add_parser("users", help="users: add, token, list, disable, password, import, "
                                         "export")
    xsub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    p = add("add", cmd_users_add, "add a user with a role", xsub)
    p.add_argument("name")
    from command.users.models import ROLES

    p.add_argument("--role", required=True, choices=ROLES)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--unit", help="township or grid code (township and grid roles)")
    where.add_argument("--dept", help="department code or name, e.g. dept.police or 公安")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p = add("token", cmd_users_token, "print a new personal API token (last line)", xsub)
    p.add_argument("name")
    p = add("list", cmd_users_list, "list users", xsub)
    p.add_argument("--json", action="store_true")
    p = add("disable", cmd_users_disable, "disable a user (sessions and token stop)", xsub)
    p.add_argument("name")
    p = add("password", cmd_users_password, "set a user's password", xsub)
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true")
    p = add("import", cmd_users_import,
            "add or update users from a .csv or .xlsx (all lines or none); new accounts' first "
            "passwords go to a CSV readable by you only, whose path is printed last", xsub)
    p.add_argument("file", help="columns 登录名/name, 角色/role, 单位/unit, 部门/dept, "
                                "姓名/display_name, 手机/phone (headers in any order)")
    p.add_argument("--passwords", metavar="FILE", default=None,
                   help="where the first passwords go (default: "
                        "./cmdcenter-passwords-YYYYmmdd-HHMMSS.csv)")
    p = add("export", cmd_users_export,
            "write every user to a new .csv or .xlsx with the import's columns "
            "(phones masked, no passwords)", xsub)
    p.add_argument("file")

    units = sub.add_parser("units", help="units: list")
    usub = units.add_subparsers(dest="units_command", required=True, metavar="ACTION")
    p = add("list", cmd_units_list, "list units", usub)
    p.add_argument("--level", choices=("county", "township", "grid", "dept"))
    p.add_argument("--json", action="store_true")

    bounds = sub.add_parser("boundaries", help="boundaries: import")
    bsub = bounds.add_subparsers(dest="boundaries_command", required=True, metavar="ACTION")
    p = add("import", cmd_boundaries_import,
            "import unit boundaries (GeoJSON, Shapefile, zipped Shapefile, GeoPackage, TopoJSON)",
            bsub)
    p.add_argument("path")
    p.add_argument("--level", required=True, choices=("county", "township", "grid"))
    p.add_argument("--code-field", required=True)
    p.add_argument("--name-field", required=True)
    p.add_argument("--parent-field", default=None,
                   help="field holding the parent's code (default: found by containment)")
    p.add_argument("--layer", default=None, help="layer of a GeoPackage")
    p.add_argument("--crs", default=None,
                   help="source datum: wgs84, cgcs2000, gcj02, bd09 or EPSG:n (default: the file's)")
    p.add_argument("--no-repair", action="store_true", help="refuse invalid polygons instead")

    p = add("brief", cmd_brief, "write a briefing: the 情况报告 of a period, or an incident's "
            "专报/续报; prints the file's path last")
    p.add_argument("--period", metavar="day|week|month",
                   help="calendar day, ISO week or calendar month in Asia/Shanghai")
    p.add_argument("--date", metavar="D", help="a day in the period (YYYY-MM-DD; a week also "
                   "2026-W47, a month 2026-11); default: the last complete period")
    p.add_argument("--incident", metavar="ID", help="an incident's 专报 (first) or 续报 (later)")
    p.add_argument("--format", default="html", metavar="html|pdf|docx|md",
                   help="default html (self-contained, charts embedded)")
    p.add_argument("--out", metavar="FILE", help="a file, or a folder for the default name "
                   "(default: <data dir>/reports/)")

    p = add("seed-history", cmd_seed_history,
            "fill the weeks before now with plausible history (skips what is stored already)")
    p.add_argument("--weeks", default="6", help="how many weeks back, 1-104 (default 6)")
    p.add_argument("--seed", default="0", help="random seed: the same seed gives the same history")
    p.add_argument("--per-day", dest="per_day", default="90",
                   help="reports a day in the whole county, on average (default 90)")
    p.add_argument("--matters", action="store_true",
                   help="also the window's matters of the last 90 days, as the demo seeds them "
                        "(routes, mediation, outcomes, follow-ups, repeat parties; run it with "
                        "the server stopped)")

    p = add("backup", cmd_backup,
            "write one archive of the database (consistent, while the server runs), the data "
            "dir's files and a manifest; prints the archive's path last")
    p.add_argument("--out", required=True, metavar="FILE",
                   help="a new file, or a folder for cmdcenter-backup-YYYYmmdd-HHMMSS.tar.gz")
    p.add_argument("--include-key", action="store_true",
                   help="put the secret key (personal data's encryption) in the archive too")
    p = add("restore", cmd_restore,
            "restore a backup into an empty data dir and an empty database of the same kind "
            "(CMDCENTER_DATABASE_URL for PostgreSQL); checks everything before writing")
    p.add_argument("file")
    p.add_argument("--key-file", metavar="K", default=None,
                   help="the deployment's secret key file, when the archive does not hold it "
                        "(or set CMDCENTER_SECRET_KEY)")

    add("migrate", cmd_migrate,
        "bring the database's schema up to this version, then exit (run it before starting "
        "several processes; they also take a lock and migrate once)")

    p = add("simulate", cmd_simulate, "connect as a feed and send realistic reports")
    p.add_argument("--url", default="http://127.0.0.1:8050")
    p.add_argument("--token", required=True)
    p.add_argument("--rate", type=float, default=2.0, help="reports per second")
    p.add_argument("--count", type=int, default=None, help="stop after N reports")
    return parser


if __name__ == "__main__":
    sys.exit(main())
