"""The peewee database: chosen by DATABASE_URL, closed after each request, upgraded by init-db."""

import dataclasses
import datetime as dt
import functools
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import click
from flask import Flask, current_app, has_app_context
from peewee import CursorWrapper, Database, DatabaseProxy, ModelAlias, Node, SqliteDatabase, fn
from playhouse import db_url
from playhouse.migrate import SchemaMigrator, migrate

from clinic.rows import JoinedRows, same_rows

db = DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "busy_timeout": 10_000,
    # A committed registration must survive a power cut, not only a crash.
    "synchronous": "full",
    "cache_size": -16_000,
}


AHEAD = dt.timedelta(days=2 * 365 + 1)  # the furthest ahead an appointment or due date may lie


def utcnow() -> dt.datetime:
    """Now in UTC, naive: every stored time is UTC and shown in the organisation's zone."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@functools.cache
def alias(model: type, role: str) -> ModelAlias:
    """`model` in one role of a statement (a referral's sender, its author), the same object
    for every statement that joins it so: peewee makes a class for each field of an alias the
    first time it is read (some 20 µs each, a hundred a list page), once a process this way.
    Like the model itself, the alias is named afresh by each statement it is compiled in; a
    role is one alias of a statement (two roles of one model are two names)."""
    return model.alias()


def connect_database(url: str) -> Database:
    """A peewee Database for the URL; PostgreSQL connections are pooled across requests."""
    scheme = urlsplit(url).scheme
    if scheme in ("postgres", "postgresql"):
        url = url.replace(f"{scheme}://", "postgresql+pool://", 1)
        # No JIT: it compiles a worklist's plan (costed high, read in milliseconds) for longer
        # than the query runs.
        options = "-c jit=off"
        return db_url.connect(url, max_connections=32, stale_timeout=300, options=options)
    if scheme == "sqlite":
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Pooled too: a connection (and its pragmas) is set up once per thread, not per request.
        url = url.replace("sqlite://", "sqlite+pool://", 1)
        return db_url.connect(
            url, pragmas=SQLITE_PRAGMAS, check_same_thread=False, max_connections=32
        )
    return db_url.connect(url)


def is_sqlite() -> bool:
    return isinstance(db.obj, SqliteDatabase)


def write_transaction():
    """A transaction for read-then-write work.

    On SQLite it takes the write lock at BEGIN (IMMEDIATE), so a second writer waits for the
    busy timeout instead of failing half-way with "database is locked". On PostgreSQL the
    compare-and-set updates in the models do the same job.
    """
    return db.atomic("IMMEDIATE") if is_sqlite() else db.atomic()


def row_exists(query):
    """SQL: EXISTS (query), a subquery correlated with the row it is asked of and answered by
    one lookup for that row. OFFSET 0 keeps PostgreSQL from turning it into a hash of every
    row the subquery could match (a whole clinic's patients) when it expects many outer rows:
    a worklist reads its index only to the page end."""
    return fn.EXISTS(query.offset(0))


class AtRun(Node):
    """A value of a statement read when it runs, `compute(*args)` (a time from the clock): a
    statement compiled once (`compiled`) asks for it again each time it runs, once for all
    its places (one `now` for every comparison), as a newly built one would. Compiled anew,
    one node has the one value it took first."""

    def __init__(self, compute, *args) -> None:
        super().__init__()
        self.compute, self.args = compute, args

    def __sql__(self, ctx):
        if ctx.state.deferring:
            return ctx.value(_Deferred(self.compute, self.args, ctx.state.converter), False)
        if not hasattr(self, "taken"):
            self.taken = self.compute(*self.args)
        return ctx.value(self.taken)


class Given(Node):
    """A value given to a statement each time it runs (`compiled(key, build, name=value)`),
    not built into it: the patient of a page, the session's token, one statement for all.
    `derive`: the statement takes derive(value) (the upper end of a prefix's range)."""

    def __init__(self, name: str, value, derive=None) -> None:
        super().__init__()
        self.name, self.derive = name, derive
        self.value = value if derive is None else derive(value)

    def derived(self, derive) -> "Given":
        """The value `derive` makes of this one, given as this one is."""
        return Given(self.name, self.value, derive)

    def __sql__(self, ctx):
        if ctx.state.deferring:
            return ctx.value(_Given(self.name, ctx.state.converter, self.derive), False)
        return ctx.value(self.value)


@dataclasses.dataclass(frozen=True)
class _Given:
    name: str
    converter: object
    derive: object = None

    def value(self, given: dict):
        value = given[self.name] if self.derive is None else self.derive(given[self.name])
        return self.converter(value) if self.converter else value


@dataclasses.dataclass(frozen=True)
class _Deferred:
    """An `AtRun` parameter of a compiled statement: computed, then converted as the column
    it is compared with would convert it."""

    compute: object
    args: tuple
    converter: object

    def value(self, taken: dict):
        """Its value in this run (`taken`: those computed so far, by what computes them)."""
        key = (self.compute, self.args)
        if key not in taken:
            taken[key] = self.compute(*self.args)
        return self.converter(taken[key]) if self.converter else taken[key]


STATEMENTS = "clinic.statements"
STATEMENTS_KEPT = 2048  # past this many shapes the cache starts afresh (memory stays bounded)


def compiled(key: tuple, build, **given) -> tuple[str, list]:
    """The SQL text and parameters of the statement `build()` returns (None: none, ""),
    compiled once per `key` in this app (peewee takes milliseconds to write a wide statement):
    `key` must hold all that the statement is built from (whose ids, which roles), and the
    clock enters it only through `AtRun`, read again on each call; a `Given` node takes the
    value named so in `given` (never None: `= NULL` is not `IS NULL`). Under TESTING every call
    also builds and compiles the statement and fails if its text or a parameter differs from
    the kept one."""
    statement = _kept(key, build)
    return statement.sql, _bound(statement.params, given)


def compiled_rows(key: tuple, build, **given) -> list:
    """The rows of the query `build()` returns, as the query gives them (model instances with
    the records it joins), from its statement compiled once per `key` (`compiled`)."""
    statement = _kept(key, build)
    cursor = db.execute_sql(statement.sql, _bound(statement.params, given))
    return statement.rows(cursor)


class _Statement:
    """A statement compiled once: its SQL text, its parameters, the query it was compiled from
    and, once it has given rows, how the columns of its rows map onto model instances."""

    # What peewee's cursor wrapper keeps of one cursor; the rest of it is worked out from the
    # query and the columns of its rows, the same for every run of one SQL text.
    PER_CURSOR = frozenset(vars(CursorWrapper(None)))

    def __init__(self, sql: str, params: list, query) -> None:
        self.sql, self.params, self.query = sql, params, query
        self.reading = self.joined = None

    def rows(self, cursor) -> list:
        """The rows of `cursor`, made as the query makes them; peewee works out the mapping of
        columns to models (a third of a list's row making) for the first run only, and joined
        rows are then made from it (`JoinedRows`; under TESTING checked against peewee's)."""
        if self.joined is not None:
            rows, description = cursor.fetchall(), cursor.description
            cursor.close()
            made = self.joined.make(rows)
            if current_app.testing:
                replayed = self._made_by_peewee(_Replay(rows, description))
                assert same_rows(made, replayed), f"joined rows differ from peewee's: {self.sql}"
            return made
        return self._made_by_peewee(cursor)

    def _made_by_peewee(self, cursor) -> list:
        wrapper = self.query._get_cursor_wrapper(cursor)
        if self.reading is not None:
            vars(wrapper).update(self.reading)
            wrapper.initialized = True
        rows = list(wrapper)
        if self.reading is None and wrapper.initialized:
            self.reading = {k: v for k, v in vars(wrapper).items() if k not in self.PER_CURSOR}
            if JoinedRows.fit(wrapper):
                self.joined = JoinedRows(wrapper)
        return rows


@dataclasses.dataclass
class _Replay:
    """Rows already fetched, read again as a cursor."""

    rows: list
    description: tuple

    def __post_init__(self) -> None:
        self.rows = iter(self.rows)

    def fetchone(self):
        return next(self.rows, None)

    def close(self) -> None:
        pass


def _kept(key: tuple, build) -> _Statement:
    if not has_app_context():  # the CLI's or a script's model code: compiled, not kept
        return _Statement(*_compiled_afresh(build))
    kept = current_app.extensions.setdefault(STATEMENTS, {})
    statement = kept.get(key)
    if statement is None or current_app.testing:
        sql, params, query = _compiled_afresh(build)
        if statement is None:
            if len(kept) >= STATEMENTS_KEPT:
                kept.clear()
            statement = kept[key] = _Statement(sql, params, query)
        elif (statement.sql, statement.params) != (sql, params):
            raise AssertionError(f"statement {key!r} is built from more than its key")
    return statement


def _compiled_afresh(build) -> tuple[str, list, object]:
    query = build()
    if query is None:
        return "", [], None
    return *db.get_sql_context(deferring=True).sql(query).query(), query


def _bound(params: list, given: dict) -> list:
    taken = {}
    return [
        p.value(taken) if isinstance(p, _Deferred) else p.value(given) if isinstance(p, _Given)
        else p for p in params
    ]  # fmt: skip


def init_schema() -> None:
    """Create missing tables, add missing columns and indexes; never drops or rewrites data."""
    from clinic.models import MODELS
    from clinic.models.core import TimelineEvent

    # Tables whose rows are facts, never updated or deleted: the audit log and every timeline.
    append_only = ["audit_event"]
    append_only += [m._meta.table_name for m in MODELS if issubclass(m, TimelineEvent)]

    with db.atomic():
        # New tables with their indexes; a table of an older release gets its new columns
        # first, then the indexes on them.
        db.create_tables([m for m in MODELS if not m.table_exists()], safe=True)
        migrator = SchemaMigrator.from_database(db.obj)
        for model in MODELS:
            table = model._meta.table_name
            existing = {column.name for column in db.get_columns(table)}
            missing = [f for f in model._meta.sorted_fields if f.column_name not in existing]
            for field in missing:
                _add_column(migrator, table, field)
            if missing and hasattr(model, "fill_added_columns"):
                model.fill_added_columns()  # the values older rows need in them
            model._schema.create_indexes(safe=True)  # indexes added by a newer release
        for table in append_only:
            _make_append_only(table)


def _add_column(migrator: SchemaMigrator, table: str, field) -> None:
    """A column added by a newer release; existing rows get its default."""
    default = field.default
    if is_sqlite() and not field.null and isinstance(default, bool | int | str):
        # SQLite adds a NOT NULL column with a constant default in place; the migrator's way
        # (add as NULL, then rebuild the table) is refused by the foreign keys pointing at it.
        context = db.obj.get_sql_context()
        column, _ = context.sql(field.ddl(context)).query()
        literal = (
            "'" + default.replace("'", "''") + "'" if isinstance(default, str) else int(default)
        )
        db.execute_sql(f'ALTER TABLE "{table}" ADD COLUMN {column} DEFAULT {literal}')
        return
    migrate(migrator.add_column(table, field.column_name, field))


def _make_append_only(table: str) -> None:
    if is_sqlite():
        for event in ("UPDATE", "DELETE"):
            db.execute_sql(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{event.lower()} "
                f"BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
        return
    db.execute_sql(
        "CREATE OR REPLACE FUNCTION clinic_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION '%% is append-only', TG_TABLE_NAME; END $$ LANGUAGE plpgsql"
    )
    db.execute_sql(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    db.execute_sql(
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION clinic_append_only()"
    )


def backup_sqlite(target: Path) -> None:
    """An online, consistent copy of the SQLite database (readers and writers carry on)."""
    if not is_sqlite():
        raise click.ClickException("backup copies a SQLite database; use pg_dump for PostgreSQL.")
    target.parent.mkdir(parents=True, exist_ok=True)
    source = db.connection()
    with sqlite3.connect(target) as copy:
        source.backup(copy)
    copy.close()


def _close_connection(_exc: BaseException | None = None) -> None:
    if not db.is_closed():
        db.close()


@click.command("init-db")
def init_db_command() -> None:
    """Create or upgrade the schema. Safe to run again: data is kept."""
    from clinic.models.patients import Patient

    init_schema()
    # Search keys added by a newer release (the phone's last four digits), for older records.
    if rebuilt := Patient.reindex_search(Patient.without_last_four_key()):
        click.echo(f"Search keys rebuilt for {rebuilt} patients.")
    click.echo("Schema is up to date.")


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def backup_command(path: Path) -> None:
    """Write an online, consistent copy of the SQLite database to PATH."""
    backup_sqlite(path)
    click.echo(f"Backed up to {path}.")


def init_app(app: Flask) -> None:
    db.initialize(connect_database(app.config["DATABASE_URL"]))
    app.teardown_appcontext(_close_connection)
    app.cli.add_command(init_db_command)
    app.cli.add_command(backup_command)
