"""The `kb` command: init, serve, reindex, import, export."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import click

from kb import config as kb_config
from kb.errors import KbError
from kb.serving import DEFAULT_MAX_CONNECTIONS
from kb.store import Person, StoreError


def _settings(ctx: click.Context) -> dict:
    return kb_config.load(ctx.obj or {})


@contextmanager
def _services(settings: dict, progress=None):
    """The store, sheet and index for one command; the index files are closed after."""
    from kb.services import open_services

    svc = open_services(settings, progress)
    try:
        yield svc
    finally:
        svc.index.close()


def _bar(label: str):
    """A progress bar on a terminal; nothing at all in a pipe or a log, where a bar
    cannot redraw and would leave a stray label among the command's output."""
    def progress(items):
        items = list(items)
        if not sys.stderr.isatty():
            yield from items
            return
        with click.progressbar(items, label=label, file=sys.stderr) as bar:
            yield from bar
    return progress


class _Commands(click.Group):
    """Every kb error that reaches the command line is its message and exit code 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KbError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Commands)
@click.option("--data-dir", envvar="KB_DATA_DIR", type=click.Path(file_okay=False),
              help="The content git repository (default: instance/content).")
@click.option("--index-dir", envvar="KB_INDEX_DIR", type=click.Path(file_okay=False),
              help="Where the search index lives (default: instance/index).")
@click.pass_context
def main(ctx: click.Context, data_dir: str | None, index_dir: str | None) -> None:
    """kb: the living complaint cheat sheet."""
    ctx.obj = {k: v for k, v in {"DATA_DIR": data_dir, "INDEX_DIR": index_dir}.items() if v}


@main.command()
@click.option("--empty", is_flag=True,
              help="No starter entries: only the greeting, closing, phone opening, synonyms, "
                   "placeholders and checks. Then `kb import FILE` adds your own sheet.")
@click.pass_context
def init(ctx: click.Context, empty: bool) -> None:
    """Create the content repository and the search index if they are missing."""
    from kb import starter
    from kb.db import Database

    settings = _settings(ctx)
    data = Path(settings["DATA_DIR"])
    fresh = not (data.exists() and any(data.iterdir()))
    if empty and fresh:
        try:
            starter.create_empty(data, settings["SEED_DIR"])
        except StoreError as exc:
            raise click.ClickException(str(exc)) from None
    db = Database(settings["DATABASE_URL"])
    try:
        with _services(settings, _bar("Indexing")) as svc:
            _init(svc, db, settings, empty, fresh)
    finally:
        db.dispose()


def _init(svc, db, settings: dict, empty: bool, fresh: bool) -> None:
    from kb import starter

    if empty and not fresh:
        if starter.own_entries(svc.store, settings["SEED_DIR"]):
            raise click.ClickException(
                "The sheet already has entries of its own, so it was left as it is. To "
                "make it exactly your spreadsheet, run `kb import --replace FILE`.")
        if starter.starter_untouched(svc.store, settings["SEED_DIR"]):
            starter.remove_starter(svc.sheet, settings["SEED_DIR"], author=_person(None))
            click.echo("Removed the starter entries (they stay in the history).")
        elif svc.store.entry_paths():
            raise click.ClickException(
                "The starter entries have been edited, so they were left as they are. To "
                "replace them with your own sheet, run `kb import --replace FILE`.")
    if empty:
        starter.record_choice(db, "empty")
    _first_admin(db, settings, err=False)
    click.echo(f"Content: {settings['DATA_DIR']} at {svc.store.head()[:7]}")
    click.echo(f"Index:   {settings['INDEX_DIR']} ({svc.index.doc_count()} entries)")
    if svc.index.meaning.available:
        click.echo(f"Meaning: {svc.index.meaning.name} (entry vectors beside the index)")
    else:
        click.echo(f"warning: {svc.index.meaning.error}", err=True)
    _warn_problems(svc.index)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", envvar="KB_WORKERS", default=0, type=int,
              help="Server processes (default: one per core; 1 runs waitress).")
@click.option("--threads", envvar="KB_THREADS", default=8, show_default=True, type=int,
              help="Threads per process.")
@click.option("--max-connections", envvar="KB_MAX_CONNECTIONS",
              default=DEFAULT_MAX_CONNECTIONS,
              show_default=True, type=int, help="Open connections each process accepts.")
@click.option("--debug", is_flag=True, help="Flask's reloading development server instead.")
@click.option("--remote", envvar="KB_REMOTE", default=None,
              help="A git URL shared by several kb nodes (KB_REMOTE).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, threads: int,
          max_connections: int, debug: bool, remote: str | None) -> None:
    """Start the web site (gunicorn processes, waitress, or Flask's dev server with --debug)."""
    from kb.app import create_app
    from kb.db import Database
    from kb.serving import ServeOptions, check_address, run

    check_address(host, port)  # a busy port: one line, before any work is done
    if remote:
        ctx.obj["REMOTE"] = remote
    opts = ServeOptions(host, port, workers, threads, max_connections)
    settings = _settings(ctx)
    # Here, before any server process: only one may create the first admin, and what is
    # to be said about it is said once.
    db = Database(settings["DATABASE_URL"])
    _first_admin(db, settings, err=True)
    db.dispose()
    make_app = partial(create_app, ctx.obj)
    if opts.server == "gunicorn" and not debug:
        # Once, before the workers start: each then opens an index that is already
        # caught up.
        _prepare(settings)
    else:
        app = create_app(ctx.obj)
        _warn_problems(app.extensions["kb"].index)
        make_app = partial(lambda built: built, app)
    if debug:
        app.run(host=host, port=port, debug=True, use_reloader=False)
        return

    def announce() -> None:
        click.echo(f"kb is running at http://{host}:{port}/  ({opts.describe()}; Ctrl+C to "
                   "stop)", err=True)

    run(make_app, opts, on_listening=announce)


def _warn_problems(index) -> None:
    for problem in index.problem_list():
        click.echo(f"warning: {problem}", err=True)


def _first_admin(db, settings: dict, err: bool) -> None:
    """Create the first admin and print its one-time password; on a later start, while no
    admin has signed in, say how to get a new one (only its hash is kept)."""
    from kb.users import admins_not_signed_in, ensure_first_admin, first_sign_in_note

    password = ensure_first_admin(db)
    if password:
        click.echo(f"Created the first user: admin / {password}  (one-time password)", err=err)
        return
    for admin in admins_not_signed_in(db):
        click.echo(f"note: {first_sign_in_note(admin, settings['ONE_TIME_PASSWORD_HOURS'])}",
                   err=err)


def _prepare(settings: dict) -> None:
    from kb.services import open_services

    svc = open_services(settings, _bar("Indexing"))
    _warn_problems(svc.index)
    svc.index.close()


@main.command()
@click.pass_context
def reindex(ctx: click.Context) -> None:
    """Rebuild the search index from the content."""
    from kb.search import SearchIndex
    from kb.services import model
    from kb.sheet import Sheet
    from kb.store import ContentStore

    settings = _settings(ctx)
    store = ContentStore.open_or_create(settings["DATA_DIR"], settings["SEED_DIR"])
    index = SearchIndex(settings["INDEX_DIR"], Sheet(store), model(settings))
    count = index.rebuild(_bar("Indexing"))
    click.echo(f"Indexed {count} entries at {store.head()[:7]}"
               + (" with their meaning vectors." if index.meaning.available else "."))
    if not index.meaning.available:
        click.echo(f"warning: {index.meaning.error}", err=True)
    for problem in index.problem_list():
        click.echo(f"needs fixing: {problem}", err=True)
    index.close()


def _person(name: str | None) -> Person:
    name = name or os.environ.get("USER") or "kb"
    return Person(name, f"{name}@localhost")


@main.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--author", help="Whose words these are (default: your login name).")
@click.option("--message", default=None, help="The reason recorded in history.")
@click.option("--replace", "replace_all", is_flag=True,
              help="The sheet becomes exactly the file's entries: entries the file does not "
                   "name are removed in the same commit (history keeps them).")
@click.option("--strict", is_flag=True,
              help="Import nothing if any new or changed row has an error `kb check` would "
                   "report (a tone phrase, an unknown placeholder, phone points over a minute).")
@click.pass_context
def import_cmd(ctx: click.Context, file: Path, author: str | None, message: str | None,
               replace_all: bool, strict: bool) -> None:
    """Import a spreadsheet (CSV or XLSX) with Complaint and Answer columns."""
    from kb import starter
    from kb.db import Database
    from kb.spreadsheet import ImportRefused, SpreadsheetError, check_path, import_sheet

    settings = _settings(ctx)
    default = f"Replace the sheet with {file.name}" if replace_all else f"Import {file.name}"
    try:
        check_path(file)  # before the sheet is opened (or, on a new machine, created)
        with _services(settings) as svc:
            report = import_sheet(
                svc.sheet, file, author=_person(author), message=message or default,
                progress=_bar("Reading rows"), replace_all=replace_all, strict=strict,
            )
    except ImportRefused as exc:
        _echo_rows(exc.report)
        raise click.ClickException(str(exc)) from None
    except (SpreadsheetError, StoreError) as exc:
        raise click.ClickException(str(exc)) from None
    if replace_all:
        db = Database(settings["DATABASE_URL"])
        starter.record_choice(db, "replace")
        db.dispose()
    click.echo(report.summary())
    _echo_rows(report)


def _echo_rows(report) -> None:
    for line in report.row_lines():
        click.echo(f"  {line}", err=True)


@main.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def export_cmd(ctx: click.Context, file: Path) -> None:
    """Write the sheet to a CSV (or .xlsx) file."""
    from kb.spreadsheet import export_sheet

    with _services(_settings(ctx)) as svc:
        count = export_sheet(svc.sheet, file)
    click.echo(f"Wrote {count} entries to {file}.")


@main.command("check")
@click.option("--warnings-as-errors", is_flag=True, help="Fail on warnings too.")
@click.option("--quiet", is_flag=True, help="Only the summary table and errors.")
@click.pass_context
def check_cmd(ctx: click.Context, warnings_as_errors: bool, quiet: bool) -> None:
    """Run the answer checks over the whole sheet; exit 1 on errors."""
    from kb.checks import check_sheet
    from kb.sheet import Sheet
    from kb.store import ContentStore

    settings = _settings(ctx)
    store = ContentStore.open_or_create(settings["DATA_DIR"], settings["SEED_DIR"])
    report = check_sheet(Sheet(store))
    click.echo(f"{'entry':44} {'errors':>6} {'warnings':>8} {'grade':>5} {'phone s':>7}")
    for e in sorted(report.entries, key=lambda e: (-e.errors, -e.warnings, e.slug)):
        click.echo(f"{e.slug[:44]:44} {e.errors:6} {e.warnings:8} {e.grade:5.1f} "
                   f"{e.phone_seconds:7.0f}")
    for e in report.entries:
        for f in e.findings:
            if quiet and f.level != "error":
                continue
            where = f"{f.field}@{f.start}" if f.start is not None else f.field
            tip = f" — try: {f.suggestion}" if f.suggestion else ""
            click.echo(f"{e.slug}: [{f.level}] {f.check} {where}: "
                       f"{f.excerpt + ': ' if f.excerpt else ''}{f.message}{tip}")
    for problem in report.problems:
        click.echo(f"[error] {problem}")
    click.echo(f"{len(report.entries)} entries: {report.errors} errors, "
               f"{report.warnings} warnings.")
    if report.errors or (warnings_as_errors and report.warnings):
        ctx.exit(1)


def _db(ctx: click.Context):
    from kb.db import Database

    db = Database(_settings(ctx)["DATABASE_URL"])
    ctx.call_on_close(db.dispose)  # a PostgreSQL connection is closed, not left to the GC
    return db


@main.group()
def user() -> None:
    """Manage people: create, list, set-role, reset-password, unlock, disable, copy."""


@user.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(["agent", "trainer", "admin"]), default="agent",
              show_default=True)
@click.option("--name", "display_name", default="", help="Display name used in emails.")
@click.option("--email", default="")
@click.option("--service", is_flag=True,
              help="A service account for an integration: no password, cannot sign in, "
                   "uses API tokens only (kb token create NAME).")
@click.pass_context
def user_create(ctx, username: str, role: str, display_name: str, email: str,
                service: bool) -> None:
    from kb.users import UserError, create_user, new_password

    password = None if service else new_password()
    try:
        user = create_user(_db(ctx), username, password, role=role, display_name=display_name,
                           email=email, must_change=True, service=service)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    if service:
        click.echo(f"Created the service account {user.username} ({role}). It cannot sign in; "
                   f"make its API token with: kb token create {user.username}")
    else:
        click.echo(f"Created {username} ({role}). One-time password: {password}")


@user.command("unlock")
@click.argument("username")
@click.pass_context
def user_unlock(ctx, username: str) -> None:
    """Forget a user's failed sign-ins, so they may try again at once from anywhere."""
    from kb.throttle import unlock
    from kb.users import UserError, get_user

    db = _db(ctx)
    try:
        user = get_user(db, username)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    unlock(db, user.username)
    click.echo(f"{user.username} may sign in again at once (failed sign-ins forgotten).")


@user.command("list")
@click.pass_context
def user_list(ctx) -> None:
    from kb.users import list_users

    for u in list_users(_db(ctx)):
        state = "active" if u.active else "disabled"
        kind = "  (service account)" if u.is_service else ""
        click.echo(f"{u.username:20} {u.role:8} {state:9} {u.display_name}{kind}")


@user.command("set-role")
@click.argument("username")
@click.argument("role", type=click.Choice(["agent", "trainer", "admin"]))
@click.pass_context
def user_set_role(ctx, username: str, role: str) -> None:
    from kb.users import UserError, update_user

    try:
        update_user(_db(ctx), username, role=role)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{username} is now {role}.")


@user.command("reset-password")
@click.argument("username")
@click.pass_context
def user_reset(ctx, username: str) -> None:
    """A new one-time password; signs out their sessions and revokes their tokens."""
    from kb.users import UserError, reset_password

    try:
        password = reset_password(_db(ctx), username)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"New one-time password for {username}: {password}")


@user.command("disable")
@click.argument("username")
@click.option("--enable", is_flag=True, help="Allow the user to sign in again.")
@click.pass_context
def user_disable(ctx, username: str, enable: bool) -> None:
    from kb.users import UserError, update_user

    try:
        update_user(_db(ctx), username, active=enable)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{username} {'can sign in again' if enable else 'can no longer sign in'}.")


@user.command("copy")
@click.option("--to", "target_url", required=True, metavar="URL",
              help="The database to copy into, e.g. postgresql+psycopg://kb:PW@db/kb.")
@click.pass_context
def user_copy(ctx, target_url: str) -> None:
    """Copy everyone (passwords, roles, tokens, favourites) from this database (KB_DATABASE_URL)
    to another. Safe to run again: nobody is copied twice or overwritten."""
    from kb.db import Database
    from kb.people_copy import REFUSED, copy_people

    source = _db(ctx)
    try:
        target = Database(target_url)
    except Exception as exc:  # a URL or server SQLAlchemy cannot use: say which
        raise click.ClickException(f"Cannot open the target database: {exc} (a PostgreSQL "
                                   "URL starts postgresql+psycopg://)") from None
    ctx.call_on_close(target.dispose)
    report = copy_people(source, target)
    for person in report.people:
        click.echo(person.line(), err=person.outcome == REFUSED)
    click.echo(report.summary())
    if report.refused:
        ctx.exit(1)


@main.group()
def token() -> None:
    """Personal API tokens."""


@token.command("create")
@click.argument("username")
@click.option("--label", default="", help="What the token is for.")
@click.pass_context
def token_create(ctx, username: str, label: str) -> None:
    from kb.users import UserError, create_token, get_user

    db = _db(ctx)
    try:
        value = create_token(db, username, label)
        owner = get_user(db, username)
    except UserError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(value)
    if owner.must_change_password and sys.stderr.isatty():  # a script reads the token only
        click.echo(f"note: {owner.username} still has a one-time password, and the API refuses "
                   "this token until they sign in and change it. For an integration, use a "
                   f"service account: kb user create NAME --service", err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
