"""Fast appends for imports: `executemany` on SQLite, `COPY … FROM STDIN` on PostgreSQL.

Rows are given as tuples in a fixed column order, with their primary keys reserved beforehand, so
customers, contacts, leads and their moves can reference one another without a round trip per row.
`bulk_create` would build a model instance per row, which at a million rows costs more than the
database does.

Reserving ids:
- PostgreSQL: `nextval` of the table's own sequence, once per id, in one statement. Concurrent
  writers (webhooks arriving during an import) draw from the same sequence, so nothing collides and
  nothing is locked.
- SQLite: the chunk's write transaction (BEGIN IMMEDIATE) excludes every other writer, so the ids
  above the table's largest id — and above its AUTOINCREMENT counter, which never hands out an id
  twice — are free until it commits.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

IMPORT_CACHE_KIB = 256 * 1024
IMPORT_WAL_CHECKPOINT_PAGES = 20_000  # of 4 KiB


@dataclass(frozen=True)
class Table:
    """The columns an import fills, then every other column with its default, so a field added
    to a model later with a default does not break imports."""

    model: type[models.Model]
    name: str
    columns: tuple[str, ...]  # given by the import, in the order of its tuples
    default_columns: tuple[str, ...]
    defaults: tuple[Any, ...]


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
        defaults.append(field.get_db_prep_save(field.get_default(), connection))
    return Table(model, model._meta.db_table, tuple(columns), tuple(default_columns), tuple(defaults))


class BulkWriter:
    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        if connection.vendor not in {"sqlite", "postgresql"}:
            raise ImproperlyConfigured(f"imports support SQLite and PostgreSQL, not {connection.vendor}")
        self.connection = connection
        self.vendor = connection.vendor
        self._sequences: dict[str, str] = {}

    @contextmanager
    def session(self) -> Iterator[None]:
        """Around a whole run, on SQLite, for this connection only and given back afterwards:
        - a bigger page cache (256 MB, bounded): an import probes and extends indexes in random
          order (phones, company keys), and with the default cache those pages are evicted by the
          pages every chunk appends, so each chunk reads them again;
        - a WAL checkpoint every 80 MB instead of every 4 MB: each checkpoint copies the pages a
          chunk touched into the database file, and the same hot index pages were copied again
          after every chunk. One passive checkpoint at the end folds the rest back."""
        if self.vendor != "sqlite":
            yield
            return
        with self.connection.cursor() as cursor:
            cursor.execute("PRAGMA cache_size")
            cache = int(cursor.fetchone()[0])
            cursor.execute("PRAGMA wal_autocheckpoint")
            checkpoint = int(cursor.fetchone()[0])
            cursor.execute(f"PRAGMA cache_size = {-IMPORT_CACHE_KIB}")
            cursor.execute(f"PRAGMA wal_autocheckpoint = {IMPORT_WAL_CHECKPOINT_PAGES}")
        try:
            yield
        finally:
            with self.connection.cursor() as cursor:
                cursor.execute(f"PRAGMA cache_size = {cache}")
                cursor.execute(f"PRAGMA wal_autocheckpoint = {checkpoint}")
                if not self.connection.in_atomic_block:
                    cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def chunk_begin(self) -> None:
        """Inside the chunk's transaction, before its writes. On PostgreSQL the commit does not wait
        for its WAL to reach the disk: a crash may lose the last chunks committed (never half of
        one, and the database stays consistent), and since a chunk's progress commits with its
        rows, the resumed import simply imports them again. The WAL writer flushes meanwhile."""
        if self.vendor == "postgresql":
            with self.connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")

    def ids_reserve(self, wanted: dict[str, int]) -> dict[str, list[int]]:
        """`wanted` maps table name → how many ids; inside the chunk's transaction."""
        wanted = {name: count for name, count in wanted.items() if count}
        if not wanted:
            return {}
        quote = self.connection.ops.quote_name
        reserved: dict[str, list[int]] = {}
        with self.connection.cursor() as cursor:
            if self.vendor == "postgresql":
                for name, count in wanted.items():
                    cursor.execute(
                        "SELECT nextval(%s::regclass) FROM generate_series(1, %s)",
                        [self._sequence(name), count],
                    )
                    reserved[name] = sorted(row[0] for row in cursor.fetchall())
            else:
                parts = []
                for name in wanted:
                    parts.append(
                        f"(SELECT COALESCE(MAX(id), 0) FROM {quote(name)}), "  # noqa: S608 -- names from model meta, quoted
                        f"(SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = '{name}')"
                    )
                cursor.execute("SELECT " + ", ".join(parts))
                row = cursor.fetchone()
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
        quote = self.connection.ops.quote_name
        column_sql = ", ".join(quote(c) for c in spec.columns + spec.default_columns)
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
                placeholders = ", ".join(["%s"] * len(rows[0]))
                cursor.executemany(
                    f"INSERT INTO {quote(spec.name)} ({column_sql}) VALUES ({placeholders})",  # noqa: S608 -- names from model meta, quoted
                    rows,
                )
