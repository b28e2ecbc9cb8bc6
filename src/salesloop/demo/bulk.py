"""Fast appends of generated rows: `executemany` on SQLite, `COPY … FROM STDIN` on PostgreSQL.

The generator assigns primary keys itself (from the current maximum), so customers, contacts, leads
and moves can reference each other without a round trip per row. The ORM is not used here on
purpose: a million leads through `bulk_create` would spend most of its time building model
instances.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.color import no_style
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper


@dataclass(frozen=True)
class TableSpec:
    """The columns the generator fills, plus any other column of the model with its default value,
    so a field added later with a default does not break the seed."""

    model: type[models.Model]
    table: str
    columns: list[str]
    extra_columns: list[str]
    extra_values: tuple[Any, ...]


def table_spec(
    model: type[models.Model], columns: Sequence[str], connection: BaseDatabaseWrapper
) -> TableSpec:
    by_column = {field.column: field for field in model._meta.concrete_fields}
    unknown = [column for column in columns if column not in by_column]
    if unknown:
        raise ImproperlyConfigured(f"{model._meta.label} has no column(s) {unknown}")
    extra_columns: list[str] = []
    extra_values: list[Any] = []
    for column, field in by_column.items():
        if column in columns:
            continue
        if not field.has_default() and not field.null:
            raise ImproperlyConfigured(
                f"the demo generator does not fill {model._meta.label}.{field.name}, which has no default"
            )
        extra_columns.append(column)
        extra_values.append(field.get_db_prep_save(field.get_default(), connection))
    return TableSpec(model, model._meta.db_table, list(columns), extra_columns, tuple(extra_values))


class TimestampFormatter:
    """Epoch seconds → the text each backend stores for an aware datetime (UTC, whole seconds).

    Django stores datetimes on SQLite as naive UTC text (`str(datetime)`); PostgreSQL parses the
    same text with an explicit offset. A per-day cache makes this a dictionary look-up plus an
    f-string, which matters at several million timestamps.
    """

    def __init__(self, vendor: str) -> None:
        self._suffix = "+00" if vendor == "postgresql" else ""
        self._days: dict[int, str] = {}

    def __call__(self, moment: int) -> str:
        day, second = divmod(moment, 86_400)
        date = self._days.get(day)
        if date is None:
            date = self._days[day] = dt.datetime.fromtimestamp(day * 86_400, dt.UTC).strftime("%Y-%m-%d")
        hour, rest = divmod(second, 3_600)
        return f"{date} {hour:02d}:{rest // 60:02d}:{rest % 60:02d}{self._suffix}"


class BulkWriter:
    def __init__(self, connection: BaseDatabaseWrapper, specs: Iterable[TableSpec]) -> None:
        if connection.vendor not in {"sqlite", "postgresql"}:
            raise ImproperlyConfigured(
                f"the demo generator supports SQLite and PostgreSQL, not {connection.vendor}"
            )
        self.connection = connection
        self.vendor = connection.vendor
        self.specs = list(specs)
        self.timestamp = TimestampFormatter(self.vendor)

    def lock(self) -> None:
        """Inside the chunk's transaction: keep other writers from taking ids we are about to use.
        SQLite's write transaction (BEGIN IMMEDIATE) is already exclusive."""
        if self.vendor == "postgresql":
            tables = ", ".join(self.connection.ops.quote_name(spec.table) for spec in self.specs)
            with self.connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {tables} IN SHARE ROW EXCLUSIVE MODE")
                # Generated demo data can be made again: the commit need not wait for the WAL to
                # reach the disk (a crash loses at most the last chunks, never consistency), and
                # the WAL writer flushes while we generate the next chunk.
                cursor.execute("SET LOCAL synchronous_commit = off")

    def next_ids(self) -> dict[type[models.Model], int]:
        ids: dict[type[models.Model], int] = {}
        with self.connection.cursor() as cursor:
            for spec in self.specs:
                pk = self.connection.ops.quote_name(spec.model._meta.pk.column)  # type: ignore[union-attr]
                cursor.execute(
                    f"SELECT COALESCE(MAX({pk}), 0) FROM {self.connection.ops.quote_name(spec.table)}"  # noqa: S608 -- names from model meta, quoted
                )
                ids[spec.model] = int(cursor.fetchone()[0]) + 1
        return ids

    def insert(self, spec: TableSpec, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if spec.extra_values:
            rows = [row + spec.extra_values for row in rows]
        columns = [*spec.columns, *spec.extra_columns]
        # Driver errors become Django's (IntegrityError …), as through the ORM; callers rely on it.
        with self.connection.wrap_database_errors:
            self._insert(spec.table, columns, rows)

    def _insert(self, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        quote = self.connection.ops.quote_name
        column_sql = ", ".join(quote(column) for column in columns)
        if self.vendor == "postgresql":
            with (
                self.connection.cursor() as cursor,
                cursor.copy(f"COPY {quote(table)} ({column_sql}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join("?" * len(columns))
            self.connection.ensure_connection()
            # The raw sqlite3 connection, inside the transaction Django opened on it: Django's
            # cursor wrapper would rewrite the SQL and adapt every value again for nothing.
            raw = self.connection.connection
            insert = f"INSERT INTO {quote(table)} ({column_sql}) VALUES ({placeholders})"  # noqa: S608 -- names from model meta, quoted
            raw.executemany(insert, rows)

    def after_chunk(self) -> None:
        """PostgreSQL's id sequences do not see explicit ids: move them past what we inserted so the
        application's next insert does not collide. SQLite's AUTOINCREMENT tracks this itself."""
        if self.vendor != "postgresql":
            return
        statements = self.connection.ops.sequence_reset_sql(no_style(), [spec.model for spec in self.specs])
        with self.connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def finish(self) -> None:
        """Fresh planner statistics after a bulk load; without them PostgreSQL plans the first
        queries on a million-row table as if it were empty."""
        if self.vendor == "postgresql":
            with self.connection.cursor() as cursor:
                for spec in self.specs:
                    cursor.execute(f"ANALYZE {self.connection.ops.quote_name(spec.table)}")
