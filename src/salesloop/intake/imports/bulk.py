"""Fast appends for imports: multi-row `INSERT … VALUES` on SQLite, `COPY … FROM STDIN` on PostgreSQL.

Rows are given as tuples in a fixed column order, with their primary keys reserved beforehand, so
customers, contacts, leads and their moves can reference one another without a round trip per row.
`bulk_create` would build a model instance per row, which at a million rows costs more than the
database does.

Reference checks. The database checks every foreign key of every row it is given, one look-up of
the referenced table per reference: ~8 million of them for a million rows. The writer checks them
itself instead, per chunk, with one statement for every referenced table: each referenced key that
the chunk did not insert itself must exist, and one that does not fails the chunk with an
IntegrityError, as the database would have. Rows the chunk inserted itself exist by construction.

- PostgreSQL: Django declares foreign keys DEFERRABLE INITIALLY DEFERRED, so every row queues one
  trigger per foreign key, fired at commit: a look-up and a row lock per reference — at 1M rows
  about 60 s of a 250 s run, the largest single cost (measured, bench/imports.py). Where the role
  may (a superuser, or PostgreSQL 15+ with SET granted on `session_replication_role`), the
  import's own inserts run with `session_replication_role = replica`, which queues no triggers;
  the writer's check locks each referenced row FOR KEY SHARE — exactly the lock the trigger takes,
  so it cannot be deleted before the commit. The role is set back before anything else runs in
  the chunk (notices, the derived rows), so other code keeps the database's checks. The only
  other triggers on the import's tables are routing's loads' (a test pins this), whose counts the
  chunk adds itself (`routing.loads.loads_add`): replica mode skips nothing else.
- SQLite: the import's connection runs with `foreign_keys` off for the whole run (SQLite can only
  switch it between transactions; `session` switches it back afterwards). Its look-ups were ~13%
  of a million-row import (measured: 118 s instead of 136 s, bench/imports.py). Nothing needs
  locking: the chunk's write transaction (BEGIN IMMEDIATE) keeps every other writer out until it
  commits. What else a chunk writes through the ORM — notices, the funnel and indicator rows of
  its new leads, the job's counts — is then not checked by the database either; those rows refer
  to the leads the chunk wrote and to the users and records it read in the same transaction.

Reserving ids:
- PostgreSQL: `nextval` of the table's own sequence, once per id, in one statement. Concurrent
  writers (webhooks arriving during an import) draw from the same sequence, so nothing collides and
  nothing is locked. A sequence is not rolled back, so the ids may be drawn on another connection
  before the chunk's transaction begins: a run draws them while it plans the chunk ahead.
- SQLite: the chunk's write transaction (BEGIN IMMEDIATE) excludes every other writer, so the ids
  above the table's largest id — and above its AUTOINCREMENT counter, which never hands out an id
  twice — are free until it commits.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper

from salesloop.core.rows import statements_run, writes_waiting

IMPORT_CACHE_KIB = 256 * 1024
IMPORT_WAL_CHECKPOINT_PAGES = 20_000  # of 4 KiB
SQLITE_VARIABLES_MAX = 32_766  # values bound per statement, at most (SQLite's default since 3.32)


@dataclass(frozen=True)
class Table:
    """The columns an import fills, then every other column with its default, so a field added
    to a model later with a default does not break imports."""

    model: type[models.Model]
    name: str
    columns: tuple[str, ...]  # given by the import, in the order of its tuples
    default_columns: tuple[str, ...]
    defaults: tuple[Any, ...]
    # Foreign keys: (position in a full row, referenced table, its key column).
    references: tuple[tuple[int, str, str], ...] = ()


def table(
    model: type[models.Model],
    columns: Sequence[str],
    connection: BaseDatabaseWrapper,
    *,
    database_assigns_id: bool = False,
) -> Table:
    """`database_assigns_id` for rows nothing refers to (moves, events, rejects): the id column is
    left out and the database numbers them."""
    pk = model._meta.pk
    assert pk is not None
    by_column = {f.column: f for f in model._meta.concrete_fields}
    unknown = [c for c in columns if c not in by_column]
    if unknown:
        raise ImproperlyConfigured(f"{model._meta.label} has no column(s) {unknown}")
    default_columns: list[str] = []
    defaults: list[Any] = []
    for column, field in by_column.items():
        if column in columns or (database_assigns_id and column == pk.column):
            continue
        if not field.has_default() and not field.null:
            raise ImproperlyConfigured(
                f"the import does not fill {model._meta.label}.{field.name}, which has no default"
            )
        default_columns.append(column)
        default = field.get_default()
        if isinstance(field, models.JSONField) and default is not None:
            # Its JSON text, encoded once: on PostgreSQL the prepared value is a wrapper that
            # `COPY` encoded again for every row (a lead's custom fields: ~3% of an import's
            # Python, py-spy); the column reads the text as JSON either way.
            defaults.append(json.dumps(default, cls=field.encoder, ensure_ascii=False))
        else:
            defaults.append(field.get_db_prep_save(default, connection))
    order = [*columns, *default_columns]
    references = tuple(
        (order.index(field.column), field.related_model._meta.db_table, field.target_field.column)
        for field in model._meta.concrete_fields
        if field.is_relation and field.column in order
    )
    return Table(
        model, model._meta.db_table, tuple(columns), tuple(default_columns), tuple(defaults), references
    )


_APPENDED: dict[tuple[Any, ...], Table] = {}


def moment(value: dt.datetime, db: BaseDatabaseWrapper | None = None) -> Any:
    """A datetime as bulk rows carry it (`rows_append`, `BulkWriter.insert`): adapted for the
    database (`adapt_datetimefield_value`), and on PostgreSQL as the text psycopg would send.
    psycopg formats a datetime for COPY through `str()`, once per value: ~2.6 µs each, against
    ~0.15 µs for the same text given as a string (measured), and a million-row import writes ~8
    million of them, nearly all one chunk's single moment. The text is the same either way; the
    held-back INSERT (`writes_together`) binds it as a literal the column reads as its type."""
    adapted = (db or connections[DEFAULT_DB_ALIAS]).ops.adapt_datetimefield_value(value)
    return str(adapted) if isinstance(adapted, dt.datetime) else adapted


def rows_append(
    model: type[models.Model],
    columns: Sequence[str],
    rows: list[tuple[Any, ...]],
    writer: BulkWriter | None = None,
) -> None:
    """Rows nothing refers to and nothing reads back as instances (assignments, a webhook batch's
    first moves and audit entries), their values prepared for the database (JSON encoded,
    datetimes adapted), appended in bulk — a multi-row INSERT on SQLite, COPY on PostgreSQL — the
    other columns given their defaults and the ids by the database: building a model instance per
    row and its SQL cost more than the database spent storing the row (measured). An import passes
    its chunk's `writer`, which checks the rows' references with the chunk's own."""
    if not rows:
        return
    db = connections[DEFAULT_DB_ALIAS]
    key = (model, tuple(columns), db.alias, db.vendor)
    spec = _APPENDED.get(key)
    if spec is None:
        spec = _APPENDED[key] = table(model, columns, db, database_assigns_id=True)
    (writer or BulkWriter(db)).insert(spec, rows)


class BulkWriter:
    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        if connection.vendor not in {"sqlite", "postgresql"}:
            raise ImproperlyConfigured(f"imports support SQLite and PostgreSQL, not {connection.vendor}")
        self.connection = connection
        self.vendor = connection.vendor
        self._sequences: dict[str, str] = {}
        self._facts: tuple[bool, bool, str, list[str] | None] | None = None  # `_server_facts`
        # Within a chunk, while its inserts skip the foreign-key triggers: the ids it inserted per
        # table, and the keys its rows refer to per (table, key column).
        self._unchecked = False
        self._own: dict[str, set[int]] = {}
        self._referenced: dict[tuple[str, str], set[Any]] = {}
        self._variables: int | None = None
        self._statements: dict[tuple[str, int], str] = {}  # (head, rows) → statement, full-size ones
        self._sqlite_unchecked = False  # within `session`, SQLite's foreign keys are off

    @contextmanager
    def session(self) -> Iterator[None]:
        """Around a whole run, on SQLite, for this connection only and given back afterwards:
        - a bigger page cache (256 MB, bounded): an import probes and extends indexes in random
          order (phones, company keys), and with the default cache those pages are evicted by the
          pages every chunk appends, so each chunk reads them again;
        - a WAL checkpoint every 80 MB instead of every 4 MB: each checkpoint copies the pages a
          chunk touched into the database file, and the same hot index pages were copied again
          after every chunk. One passive checkpoint at the end folds the rest back;
        - foreign keys off: each chunk checks its references itself (see the module's docstring).
          Inside a transaction SQLite cannot switch them (a test's), and they stay on."""
        if self.vendor != "sqlite":
            yield
            return
        with self.connection.cursor() as cursor:
            cursor.execute("PRAGMA cache_size")
            cache = int(cursor.fetchone()[0])
            cursor.execute("PRAGMA wal_autocheckpoint")
            checkpoint = int(cursor.fetchone()[0])
            cursor.execute("PRAGMA foreign_keys")
            foreign_keys = int(cursor.fetchone()[0])
            cursor.execute(f"PRAGMA cache_size = {-IMPORT_CACHE_KIB}")
            cursor.execute(f"PRAGMA wal_autocheckpoint = {IMPORT_WAL_CHECKPOINT_PAGES}")
            cursor.execute("PRAGMA foreign_keys = OFF")
            cursor.execute("PRAGMA foreign_keys")
            self._sqlite_unchecked = not cursor.fetchone()[0]
        try:
            yield
        finally:
            self._sqlite_unchecked = False
            with self.connection.cursor() as cursor:
                cursor.execute(f"PRAGMA cache_size = {cache}")
                cursor.execute(f"PRAGMA wal_autocheckpoint = {checkpoint}")
                if not self.connection.in_atomic_block:
                    cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
                    cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def chunk_begin(self) -> None:
        """Inside the chunk's transaction, before its reads and writes. On PostgreSQL:
        - the commit does not wait for its WAL to reach the disk: a crash may lose the last chunks
          committed (never half of one, and the database stays consistent), and since a chunk's
          progress commits with its rows, the resumed import simply imports them again. The WAL
          writer flushes meanwhile;
        - no JIT compilation: a look-up of 10,000 values is estimated expensive enough to be
          compiled, which takes longer (~50–200 ms a query, measured) than running it;
        - where the role may, the chunk's own inserts queue no foreign-key triggers until
          `references_confirm` (see the module's docstring);
        - where the role may and the server does not already, the pages the chunk writes first
          after a checkpoint go into the WAL compressed (see `wal_compression`).
        On SQLite, within `session`, the chunk's own inserts are checked by `references_confirm`."""
        self._own, self._referenced = {}, {}
        self._unchecked = self._sqlite_unchecked or (self.vendor == "postgresql" and self.may_skip_triggers())
        if self.vendor == "postgresql":
            settings = ["synchronous_commit = off", "jit = off"]
            if self._unchecked:
                settings.append("session_replication_role = replica")
            if compression := self.wal_compression():
                settings.append(f"wal_compression = {compression}")
            with self.connection.cursor() as cursor:
                cursor.execute("; ".join(f"SET LOCAL {setting}" for setting in settings))

    @property
    def triggers_skipped(self) -> bool:
        """Whether the chunk's inserts so far skipped the tables' ordinary triggers (PostgreSQL in
        replica mode, until `references_confirm`): the foreign keys', which that checks, and
        routing's loads', whose counts the chunk adds itself (`engine.chunk_write`)."""
        return self._unchecked and self.vendor == "postgresql"

    def may_skip_triggers(self) -> bool:
        """Whether this role may set `session_replication_role`."""
        return self.vendor == "postgresql" and self._server_facts()[0]

    def wal_compression(self) -> str:
        """How the chunk's full-page images are compressed in the WAL, or "" to leave them as
        they are. After each checkpoint the first change to a page writes the whole page into
        the WAL; an import changes pages of every index everywhere, and a million rows wrote
        ~1.2 GB of such images, a quarter of their 4.8 GB of WAL — which brought the next
        checkpoint, and more images, sooner (server defaults, pg_stat_wal). With lz4 the run
        wrote 0.7 GB less, for little CPU; alternating runs on PostgreSQL 15 were 7–9 s faster in
        two pairs, within the machine's noise in three more (bench/README.md). Only where the
        role may set it (a superuser, or SET granted on PostgreSQL 15+) and the server leaves it
        off: one that compresses already keeps its own method."""
        if self.vendor != "postgresql":
            return ""
        _, may, setting, methods = self._server_facts()
        if not may or setting != "off":
            return ""
        methods = methods or ["on"]  # before PostgreSQL 15 it is on or off (pglz)
        return next(method for method in ("lz4", "pglz", "on") if method in methods)

    def _server_facts(self) -> tuple[bool, bool, str, list[str] | None]:
        """Asked once per writer: whether this role may set `session_replication_role`, whether
        it may set `wal_compression`, and that setting and its methods."""
        if self._facts is None:
            if self.connection.pg_version >= 150000:  # a superuser has every privilege
                sql = (
                    "SELECT has_parameter_privilege('session_replication_role', 'SET'), "
                    "has_parameter_privilege('wal_compression', 'SET'), setting, enumvals "
                    "FROM pg_settings WHERE name = 'wal_compression'"
                )
            else:
                sql = (
                    "SELECT r.rolsuper, r.rolsuper, s.setting, s.enumvals FROM pg_roles r, pg_settings s "
                    "WHERE r.rolname = current_user AND s.name = 'wal_compression'"
                )
            with self.connection.cursor() as cursor:
                cursor.execute(sql)
                triggers, compression, setting, methods = cursor.fetchone()
            self._facts = (bool(triggers), bool(compression), setting, methods)
        return self._facts

    def references_confirm(self) -> None:
        """After the chunk's inserts: what the database's skipped foreign-key checks would have
        done (see the module's docstring); on PostgreSQL, the triggers back on for whatever runs
        next in the chunk. Raises IntegrityError if a referenced row is gone."""
        if not self._unchecked:
            return
        checks: list[tuple[str, str, set[Any]]] = []
        for (name, key), values in sorted(self._referenced.items()):
            wanted = values - self._own.get(name, set()) if key == "id" else values
            if wanted:
                checks.append((name, key, wanted))
        with self.connection.cursor() as cursor:
            if checks:
                cursor.execute(*self._references_found(checks, counted=True))
                found = dict(cursor.fetchall())
                short = [check for i, check in enumerate(checks) if found.get(i, 0) < len(check[2])]
                if short:  # name what is gone
                    cursor.execute(*self._references_found(short))
                    present: dict[int, set[str]] = {}
                    for position, value in cursor.fetchall():
                        present.setdefault(position, set()).add(value)
                    for position, (name, key, wanted) in enumerate(short):
                        missing = sorted({str(value) for value in wanted} - present.get(position, set()))
                        if missing:
                            raise IntegrityError(
                                f"the import refers to {name}.{key} {missing[:5]}, which no longer exist"
                            )
            if self.vendor == "postgresql":
                cursor.execute("SET LOCAL session_replication_role = origin")
        self._unchecked = False
        self._own, self._referenced = {}, {}

    def _references_found(
        self, checks: list[tuple[str, str, set[Any]]], *, counted: bool = False
    ) -> tuple[str, list[Any]]:
        """One statement for every referenced table: (position in `checks`, key as text) of each
        key found — or, `counted`, (position, how many were found), which is all a chunk whose
        references hold needs: the keys are unique, so none is missing when as many are found as
        were asked for (a million-row import's chunks ask for ~600,000 keys, most of them the
        recurring companies' customers, and handing each back as text, to be compared in Python,
        cost ~1.5 s of the run's writer thread, measured). On PostgreSQL a locking read per table
        (a CTE, as FOR KEY SHARE cannot stand in a UNION); on SQLite the keys arrive as a JSON
        array each, one probe of the table's key per value."""
        quote = self.connection.ops.quote_name
        if self.vendor == "postgresql":
            ctes = ", ".join(
                f"r{i} AS MATERIALIZED (SELECT {quote(key)} AS k FROM {quote(name)} "  # noqa: S608 -- names from model meta, quoted
                f"WHERE {quote(key)} = ANY(%s) FOR KEY SHARE)"
                for i, (name, key, _) in enumerate(checks)
            )
            value = "count(*)" if counted else "k::text"
            found = " UNION ALL ".join(
                f"SELECT {i}, {value} FROM r{i}"  # noqa: S608 -- numbered CTEs
                for i in range(len(checks))
            )
            return f"WITH {ctes} {found}", [sorted(wanted) for _, _, wanted in checks]
        found = " UNION ALL ".join(
            f"SELECT {i}, {'count(*)' if counted else f'CAST(t.{quote(key)} AS TEXT)'} "  # noqa: S608 -- names from model meta, quoted
            f"FROM json_each(%s) AS wanted CROSS JOIN {quote(name)} t WHERE t.{quote(key)} = wanted.value"
            for i, (name, key, _) in enumerate(checks)
        )
        return found, [json.dumps(sorted(wanted), ensure_ascii=False) for _, _, wanted in checks]

    def ids_reserve(
        self, wanted: dict[str, int], drawn: dict[str, list[int]] | None = None
    ) -> dict[str, list[int]]:
        """`wanted` maps table name → how many ids; inside the chunk's transaction. `drawn`: ids
        drawn for it beforehand (`ids_draw`, PostgreSQL), taken as they are if they are as many."""
        wanted = {name: count for name, count in wanted.items() if count}
        if not wanted:
            return {}
        if drawn is not None and {name: len(ids) for name, ids in drawn.items() if ids} == wanted:
            reserved = drawn
        elif self.vendor == "postgresql":
            reserved = self.ids_draw(wanted)
        else:
            reserved = self._sqlite_ids(wanted)
        if self._unchecked:
            for name, ids in reserved.items():
                self._own.setdefault(name, set()).update(ids)
        return reserved

    def ids_draw(self, wanted: dict[str, int]) -> dict[str, list[int]]:
        """PostgreSQL: `wanted` ids per table drawn from each table's own sequence (`nextval`,
        once per id, in one statement), on whichever connection and transaction this writer's
        thread has: a sequence hands out an id once, whether or not the transaction commits. A run
        draws the next chunk's ids while it plans that chunk, on the planning thread's connection
        (`services.PlanAhead`): ~45,000 ids a chunk took the writer ~50 ms (measured: 24 ms per
        20,000), a fiftieth of a million-row run on its critical path."""
        reserved: dict[str, list[int]] = {}
        with self.connection.cursor() as cursor:
            for name, count in wanted.items():
                if count:
                    cursor.execute(
                        "SELECT nextval(%s::regclass) FROM generate_series(1, %s)",
                        [self._sequence(name), count],
                    )
                    reserved[name] = sorted(row[0] for row in cursor.fetchall())
        return reserved

    def transaction_id(self) -> int | None:
        """PostgreSQL: the id of this connection's transaction, if it has been given one (a write,
        or a `nextval` that logged the sequence)."""
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id_if_assigned()::text")
            xid = cursor.fetchone()[0]
        return int(xid) if xid is not None else None

    def _sqlite_ids(self, wanted: dict[str, int]) -> dict[str, list[int]]:
        """SQLite: the ids above each table's largest and its AUTOINCREMENT counter, free until the
        chunk's write transaction commits (see the module's docstring)."""
        quote = self.connection.ops.quote_name
        parts = [
            f"(SELECT COALESCE(MAX(id), 0) FROM {quote(name)}), "  # noqa: S608 -- names from model meta, quoted
            f"(SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = '{name}')"
            for name in wanted
        ]
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT " + ", ".join(parts))
            row = cursor.fetchone()
        reserved: dict[str, list[int]] = {}
        for position, (name, count) in enumerate(wanted.items()):
            start = max(row[2 * position], row[2 * position + 1]) + 1
            reserved[name] = list(range(start, start + count))
        return reserved

    def _sequence(self, name: str) -> str:
        sequence = self._sequences.get(name)
        if sequence is None:
            with self.connection.cursor() as cursor:
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [name])
                sequence = cursor.fetchone()[0]
            if not sequence:
                raise ImproperlyConfigured(f"{name}.id has no sequence")
            self._sequences[name] = sequence
        return sequence

    def insert(self, spec: Table, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if spec.defaults:
            defaults = spec.defaults
            rows = [row + defaults for row in rows]
        if self._unchecked:
            for position, target, key in spec.references:
                referenced = self._referenced.setdefault((target, key), set())
                referenced.update(row[position] for row in rows)
                referenced.discard(None)
        quote = self.connection.ops.quote_name
        column_sql = ", ".join(quote(c) for c in spec.columns + spec.default_columns)
        if self.vendor == "postgresql" and writes_waiting(self.connection):
            # a few rows held back to go with the caller's other writes (`core.rows.writes_together`):
            # a multi-row INSERT, written out like the rest, instead of a COPY's round trip
            row_sql = "(" + ", ".join(["%s"] * len(rows[0])) + ")"
            sql = f"INSERT INTO {quote(spec.name)} ({column_sql}) VALUES "  # noqa: S608 -- names from model meta, quoted
            statements_run(
                [(sql + ", ".join([row_sql] * len(rows)), list(itertools.chain.from_iterable(rows)))]
            )
            return
        with self.connection.cursor() as cursor:
            if self.vendor == "postgresql":
                # Django does not wrap `copy`; wrapping its errors makes a unique violation the
                # IntegrityError the engine retries on, as on SQLite.
                with (
                    self.connection.wrap_database_errors,
                    cursor.copy(f"COPY {quote(spec.name)} ({column_sql}) FROM STDIN") as copy,
                ):
                    write = copy.write_row
                    for row in rows:
                        write(row)
            else:
                head = f"INSERT INTO {quote(spec.name)} ({column_sql}) VALUES "  # noqa: S608 -- names from model meta, quoted
                self._sqlite_insert(head, rows)

    def _sqlite_insert(self, head: str, rows: list[tuple[Any, ...]]) -> None:
        """`head` (`INSERT INTO t (…) VALUES `) and the rows, as few statements of many rows each
        as SQLite's limit on bound values allows (32,766 since 3.32), not `executemany`'s one
        statement execution per row. The sqlite3 module lets go of the GIL around each execution
        and takes it back after: one row at a time, a thread running Python meanwhile (routing the
        chunk, see `engine.chunk_write`) held the writer up for a switch interval (5 ms) per row —
        50,000 rows into an indexed table took 310 s instead of 1.2 (measured). Many rows a
        statement is also faster alone: 0.71 s instead of 1.16 s for the same rows (measured).
        The statements are the same text for the same number of rows, so SQLite compiles each
        size once (the module's statement cache). They go to the sqlite3 connection itself: Django's
        cursor rewrites each statement's placeholders, a search through ~200 KB of text."""
        width = len(rows[0])
        per = max(1, self._sqlite_variables() // width)
        row_sql = "(" + ", ".join(["?"] * width) + ")"
        raw = self.connection.connection
        with self.connection.wrap_database_errors:
            for start in range(0, len(rows), per):
                part = rows[start : start + per]
                statement = self._statements.get((head, len(part)))
                if statement is None:
                    statement = head + ", ".join([row_sql] * len(part))
                    if len(part) == per:
                        self._statements[(head, len(part))] = statement
                raw.execute(statement, list(itertools.chain.from_iterable(part)))

    def _sqlite_variables(self) -> int:
        """How many values one SQLite statement may bind (its compiled-in limit)."""
        if self._variables is None:
            self.connection.ensure_connection()
            limit = self.connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            self._variables = min(limit, SQLITE_VARIABLES_MAX)
        return self._variables
