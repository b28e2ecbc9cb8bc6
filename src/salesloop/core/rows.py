"""Model rows read with hand-written SQL, for the few reads a hot path repeats (every webhook
delivery, every routed batch): the ORM spends several times longer building such a query than the
database spends running it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper

M = TypeVar("M", bound=models.Model)


def not_blank(column: str) -> str:
    """The condition of our partial indexes on an optional identity (a contact's phone, WeCom id or
    e-mail, an event's channel id), written as the index states it: `NOT (col = '')`. A query
    must repeat it for SQLite to use the index, and only in this form — given `col <> ''`, SQLite
    reads the whole table (tests/intake/test_burst.py explains every statement of a delivery)."""
    return f"NOT ({column} = '')"


def first_row(
    model: type[M], where: str, params: list[Any], *, order_by: str = "id", lock: bool = False
) -> M | None:
    """The first row `where` selects, as a model instance (`lock`: with its
    row lock, on databases that have row locks). See `model_rows`."""
    found = model_rows(model, where, params, order_by=order_by, limit=1, lock=lock)
    return found[0] if found else None


def model_rows(
    model: type[M],
    where: str,
    params: list[Any],
    *,
    order_by: str = "id",
    limit: int | None = None,
    lock: bool = False,
) -> list[M]:
    """The rows `where` selects, as model instances.

    Written out instead of built by the ORM: every delivery asks these few questions (the source
    by its slug, the contact by phone, a batch's events already stored …), and building the SQL
    costs the ORM several times what running it costs. Measured on SQLite, the source by its
    slug: 541 µs through a queryset, 177 µs as a raw queryset (which works out its columns and
    converters on every call), 81 µs here, with the columns and converters worked out once per
    model (`_row_shape`)."""
    db = _db()
    sql = _select(model, where, db, order_by=order_by, limit=limit, lock=lock)
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return _instances(model, rows, db)


class Question(NamedTuple):
    """A `model_rows` question, to be asked with others (`model_rows_together`)."""

    model: type[models.Model]
    where: str
    params: list[Any]
    lock: bool = False
    order_by: str = "id"
    limit: int | None = None

    def first(self) -> Any:
        """The question's first row asked alone (`first_row`)."""
        return first_row(self.model, self.where, self.params, order_by=self.order_by, lock=self.lock)


class SqlQuestion(NamedTuple):
    """An `sql_rows` question, to be asked with others: each value read as the field at its
    position in `fields` reads it (`None`, or no `fields`: as the database gives it)."""

    sql: str
    params: list[Any]
    fields: tuple[models.Field[Any, Any] | None, ...] = ()


def model_rows_together(questions: list[Question | SqlQuestion]) -> list[list[Any]]:
    """Several `model_rows` (and `sql_rows`) questions and their answers, in the same order. On
    PostgreSQL they are asked in one round trip: one query string (written out by psycopg's
    client-side binding, as `execute` would), its result sets read one after the other, each
    statement run after the one before (a locking read's locks are held by the next); a webhook
    batch asks its stored events, known people and companies so while it holds the intake's turn,
    and routing its rotations and its reps' loads. Elsewhere one by one."""
    db = _db()
    if db.vendor != "postgresql" or len(questions) < 2:
        return [
            sql_rows(q.sql, q.params, list(q.fields))
            if isinstance(q, SqlQuestion)
            else model_rows(q.model, q.where, q.params, lock=q.lock, order_by=q.order_by, limit=q.limit)
            for q in questions
        ]
    with db.cursor() as cursor:
        raw = cursor.cursor  # psycopg's ClientCursor, under Django's wrapper
        written = LiteralWriter(raw)
        cursor.execute(
            ";\n".join(
                written(q.sql, q.params)
                if isinstance(q, SqlQuestion)
                else written(
                    _select(q.model, q.where, db, order_by=q.order_by, limit=q.limit, lock=q.lock), q.params
                )
                for q in questions
            )
        )
        answers: list[list[Any]] = []
        for number, question in enumerate(questions):
            if number:
                raw.nextset()
            rows = raw.fetchall()
            if isinstance(question, SqlQuestion):
                answers.append(_converted(rows, _field_converters(question.fields, db), db))
            else:
                answers.append(_instances(question.model, rows, db))
    return answers


class LiteralWriter:
    """Statements with their values written in, for sending several in one query string on
    PostgreSQL: `LiteralWriter(cursor)(sql, params)` is what psycopg's `ClientCursor.mogrify` gives
    for a statement of ours — each value as psycopg writes it as a literal (`Transformer.as_literal`,
    the cursor's own adapters), NULL for None — without mogrify's parsing of the query.

    psycopg finds a query's placeholders with a regular expression, and caches what it found only
    for queries of at most 50 parameters. A webhook batch's inserts and look-ups have hundreds to
    thousands, so every one was parsed afresh: ~2 ms of a 450-value insert's 2.5, a quarter of a
    web process's CPU in a burst on PostgreSQL (py-spy). Our statements name their values with `%s`
    alone and write a literal percent sign as `%%` (as psycopg asks): then the query itself is the
    template, and bytes formatting fills it in. Anything else (a named placeholder, a stray `%`,
    too few or too many values) fails, as it would in psycopg. Without values (None) the statement
    is sent as it is, as mogrify sends it."""

    def __init__(self, cursor: Any) -> None:
        from psycopg.adapt import Transformer

        self._literal = Transformer.from_context(cursor).as_literal
        self._encoding = cursor.connection.info.encoding

    def __call__(self, sql: str, params: Sequence[Any] | None) -> str:
        if params is None:
            return sql
        literal = self._literal
        values = tuple(b"NULL" if value is None else literal(value) for value in params)
        try:
            written = sql.encode(self._encoding) % values
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{exc}: {sql[:200]!r} with {len(values)} values") from exc
        return written.decode(self._encoding)


def _select(
    model: type[models.Model],
    where: str,
    db: BaseDatabaseWrapper,
    *,
    order_by: str = "id",
    limit: int | None = None,
    lock: bool = False,
) -> str:
    table, columns, _, _ = _row_shape(model, db)
    # Our own table and conditions; every value is a parameter.
    sql = f"SELECT {columns} FROM {table} WHERE {where}"  # noqa: S608
    if order_by:
        sql += f" ORDER BY {order_by}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    if lock and db.features.has_select_for_update:
        sql += " FOR UPDATE"
    return sql


def _instances(model: type[M], rows: list[tuple[Any, ...]], db: BaseDatabaseWrapper) -> list[M]:
    _, _, names, converters = _row_shape(model, db)
    alias = db.alias
    return [model.from_db(alias, names, values) for values in _converted(rows, converters, db)]


def _db() -> BaseDatabaseWrapper:
    """This thread's connection itself: each attribute of the `connection` proxy looks the
    thread's connection up again (~5% of a webhook batch's write turn went to those look-ups)."""
    return connections[DEFAULT_DB_ALIAS]


def _converted(
    rows: list[tuple[Any, ...]], converters: list[tuple[int, Any, Any]], db: BaseDatabaseWrapper
) -> list[Any]:
    if not converters:
        return rows
    found = []
    for row in rows:
        values = list(row)
        for index, functions, column in converters:
            value = values[index]
            for function in functions:
                value = function(value, column, db)
            values[index] = value
        found.append(values)
    return found


_RowShape = tuple[str, str, list[str], list[tuple[int, Any, Any]]]
_ROW_SHAPES: dict[tuple[type[models.Model], str, str], _RowShape] = {}


def _row_shape(model: type[models.Model], db: BaseDatabaseWrapper) -> _RowShape:
    """A model's table and columns (quoted), their attribute names, and the converters the
    database and each field apply to a value read (JSON decoded, datetimes made aware …), as the
    ORM's own reads apply them."""
    key = (model, db.alias, db.vendor)
    shape = _ROW_SHAPES.get(key)
    if shape is None:
        fields = model._meta.concrete_fields
        converters = []
        for index, field in enumerate(fields):
            column = field.get_col(model._meta.db_table)
            # the database's converters first (datetimes made aware …), then the field's (JSON
            # decoded …), as the ORM's compiler applies them
            functions = db.ops.get_db_converters(column) + column.get_db_converters(db)
            if functions:
                converters.append((index, functions, column))
        shape = _ROW_SHAPES[key] = (
            db.ops.quote_name(model._meta.db_table),
            ", ".join(db.ops.quote_name(field.column) for field in fields),
            [field.attname for field in fields],
            converters,
        )
    return shape


def sql_rows(
    sql: str, params: list[Any], fields: list[models.Field[Any, Any] | None]
) -> list[tuple[Any, ...] | list[Any]]:
    """The rows of hand-written SQL (over several tables: a join, an aggregate), each value read
    as the ORM reads the model field at its position (`None`: the value as the database gives
    it) — JSON decoded, times and datetimes made Python's, as in `model_rows`."""
    db = _db()
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return _converted(rows, _field_converters(tuple(fields), db), db)


_FIELD_CONVERTERS: dict[tuple[Any, ...], list[tuple[int, Any, Any]]] = {}


def _field_converters(
    fields: tuple[models.Field[Any, Any] | None, ...], db: BaseDatabaseWrapper
) -> list[tuple[int, Any, Any]]:
    key = (fields, db.alias, db.vendor)
    converters = _FIELD_CONVERTERS.get(key)
    if converters is None:
        converters = []
        for index, field in enumerate(fields):
            if field is None:
                continue
            column = field.get_col(field.model._meta.db_table)
            functions = db.ops.get_db_converters(column) + column.get_db_converters(db)
            if functions:
                converters.append((index, functions, column))
        _FIELD_CONVERTERS[key] = converters
    return converters


def instances_insert(instances: list[Any]) -> None:
    """`bulk_create` for the few inserts every webhook batch makes (events, customers, contacts,
    leads, their first moves, audit entries, notifications): one `INSERT … VALUES (…), (…) …
    RETURNING` per model, written out, the new ids set on the instances. Django's `bulk_create`
    does the same, but builds each value through its SQL compiler, which cost more than the
    database spent storing the rows (measured on a burst of webhooks).

    As `bulk_create`: each field's `pre_save` (defaults, auto_now) and `get_db_prep_save` give the
    value; a foreign key whose object is cached takes that object's id (an unsaved one is refused);
    no `save()` or signal runs; the instances are marked saved. Instances given their ids beforehand
    (`ids_assign`, inside `writes_together`) are inserted with them, held back with the other writes.

    The fields are given this thread's connection itself, not the `connection` proxy (each of its
    attributes is looked up per thread), and a batch's moments (most rows share one, `now`) are
    prepared once per kind of field."""
    if not instances:
        return
    db = _db()
    model = type(instances[0])
    pk = model._meta.pk
    assert pk is not None
    held = writes_waiting(db) and instances[0].pk is not None
    if held and any(instance.pk is None for instance in instances):
        raise ValueError(f"{model._meta.label}: some instances have an id given beforehand, others not")
    # ids given beforehand (`ids_assign`): the insert names them and waits with the other writes
    fields, head, returning = _insert_shape(model, db, with_id=held)
    moments: dict[tuple[type, dt.datetime], Any] = {}
    per_statement = max(1, INSERT_PARAMETERS // len(fields))
    one_row = f"({', '.join(['%s'] * len(fields))})"
    for start in range(0, len(instances), per_statement):
        part = instances[start : start + per_statement]
        values: list[Any] = []
        for instance in part:
            for field, relation, plain in fields:
                if relation is not None and getattr(instance, field.attname) is None:
                    related = relation.get_cached_value(instance, default=None)
                    if related is not None:
                        if related.pk is None:
                            label = f"{model._meta.label}.{field.name}"
                            raise ValueError(f"{label}: the related {related._meta.label} is not saved")
                        # the object again, not its id: setting the id would drop it from the cache
                        setattr(instance, field.name, related)
                if plain is not None:
                    value = getattr(instance, field.attname)
                    if value is None or type(value) is plain:
                        values.append(value)  # what `pre_save` and `get_db_prep_save` would give
                        continue
                value = field.pre_save(instance, True)
                if isinstance(value, dt.datetime):
                    key = (type(field), value)
                    if key not in moments:
                        moments[key] = field.get_db_prep_save(value, db)
                    values.append(moments[key])
                else:
                    values.append(field.get_db_prep_save(value, db))
        if held:
            statements_run([(head + ", ".join([one_row] * len(part)), values)])
            ids = [instance.pk for instance in part]
        else:
            with db.cursor() as cursor:
                cursor.execute(head + ", ".join([one_row] * len(part)) + returning, values)
                ids = [row[0] for row in cursor.fetchall()]
        for instance, new_id in zip(part, ids, strict=True):
            setattr(instance, pk.attname, new_id)
            instance._state.adding = False
            instance._state.db = db.alias


def ids_assign(groups: list[list[Any]], drawn: IdsDrawn | None = None) -> None:
    """On PostgreSQL inside `writes_together`: each group's unsaved instances (one model per group)
    are given ids from their table's sequence, every group's in one round trip, so that
    `instances_insert` then holds their inserts back with the other writes instead of waiting for
    each insert's ids (RETURNING). A webhook batch's customers, contacts, leads and events were four
    round trips in the intake's turn; the ids were all they were waited for. Nothing inside the
    block may then read the rows back: they are written when it ends. Elsewhere (SQLite, or
    outside the block) nothing is done, and `instances_insert` asks the database for the ids.
    `drawn`: ids the caller drew ahead with its own reads (`ids_question`), given out first; only
    what they lack is drawn here."""
    db = _db()
    groups = [group for group in groups if group]
    if db.vendor != "postgresql" or not writes_waiting(db) or not groups:
        return
    for group in groups:
        if any(instance.pk is not None for instance in group):
            raise ValueError(f"{type(group[0])._meta.label}: ids are given to unsaved instances only")
    pools = drawn if drawn is not None else IdsDrawn()
    short = [(type(group[0]), len(group) - pools.left(type(group[0]))) for group in groups]
    question = ids_question([(model, n) for model, n in short if n > 0])
    if question is not None:  # (none drawn ahead, or too few)
        pools.add(sql_rows(question.sql, question.params, []))
    for group in groups:
        for instance, new_id in zip(group, pools.take(type(group[0]), len(group)), strict=True):
            instance.pk = new_id


class IdsDrawn:
    """Ids drawn from tables' sequences (`ids_question`'s answer), by model, for `ids_assign` to
    give out in ascending order. Ids drawn and never given out are gaps in the sequence, as a
    rolled-back insert leaves."""

    def __init__(self, rows: list[Any] | None = None) -> None:
        self._ids: dict[str, list[int]] = {}
        self.add(rows or [])

    def add(self, rows: list[Any]) -> None:
        for table, new_id in rows:
            self._ids.setdefault(table, []).append(new_id)
        for ids in self._ids.values():
            ids.sort()

    def left(self, model: type[models.Model]) -> int:
        return len(self._ids.get(model._meta.db_table, []))

    def take(self, model: type[models.Model], count: int) -> list[int]:
        ids = self._ids.get(model._meta.db_table, [])
        taken, self._ids[model._meta.db_table] = ids[:count], ids[count:]
        return taken


def ids_question(wanted: list[tuple[type[models.Model], int]]) -> SqlQuestion | None:
    """`count` new ids from each model's table's sequence, as rows (table, id): one statement,
    to be asked alone (`ids_assign`) or with a caller's other reads (`model_rows_together`), whose
    answer `IdsDrawn` holds. None where ids are not drawn ahead (SQLite: inserts take theirs)."""
    wanted = [(model, count) for model, count in wanted if count > 0]
    if not wanted or _db().vendor != "postgresql":
        return None
    parts, params = [], []
    for model, count in wanted:
        parts.append("SELECT %s, nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)")
        params += [model._meta.db_table, model._meta.db_table, count]
    return SqlQuestion(" UNION ALL ".join(parts), params)


INSERT_PARAMETERS = 30_000  # bound parameters per statement: under SQLite's 32,766 and PostgreSQL's 65,535

_InsertShape = tuple[list[tuple[Any, Any, type | None]], str, str]
_INSERT_SHAPES: dict[tuple[Any, ...], _InsertShape] = {}

# Fields whose `pre_save` reads the attribute and whose `get_db_prep_save` gives a value of this
# exact type (or None) back as it is, on either database: an insert takes such values without the
# calls — a third of a webhook batch's inserting went to them (py-spy). Exact classes only: a
# subclass may prepare its values.
_PLAIN_FIELDS: dict[type, type] = {
    models.CharField: str,
    models.TextField: str,
    models.EmailField: str,
    models.SlugField: str,
    models.IntegerField: int,
    models.BigIntegerField: int,
    models.SmallIntegerField: int,
    models.PositiveIntegerField: int,
    models.PositiveSmallIntegerField: int,
    models.BooleanField: bool,
}


def _insert_shape(
    model: type[models.Model], db: BaseDatabaseWrapper, *, with_id: bool = False
) -> _InsertShape:
    """The fields an insert fills (every concrete one but an automatic id, unless `with_id`: the
    ids are given), each with itself as a relation when it is a foreign key and the type of the
    values it passes as they are (`_PLAIN_FIELDS`; a foreign key to an integer id: int); the
    statement's head and its RETURNING clause (none when the ids are given)."""
    key = (model, db.alias, db.vendor, with_id)
    shape = _INSERT_SHAPES.get(key)
    if shape is None:
        fields = [
            (field, field if field.is_relation else None, _plain_type(field))
            for field in model._meta.concrete_fields
            if with_id or not (field.primary_key and isinstance(field, models.AutoField))
        ]
        quote = db.ops.quote_name
        columns = ", ".join(quote(f.column) for f, _, _ in fields)
        head = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES "  # noqa: S608 -- names from model meta
        pk = model._meta.pk
        assert pk is not None
        returning = "" if with_id else f" RETURNING {quote(pk.column)}"
        shape = _INSERT_SHAPES[key] = (fields, head, returning)
    return shape


def _plain_type(field: Any) -> type | None:
    if type(field) is models.ForeignKey:
        target = field.target_field
        return int if type(target) in (models.AutoField, models.BigAutoField) else None
    return _PLAIN_FIELDS.get(type(field))


UPDATE_ROWS = 5000  # rows per statement: a few values each, well under either database's limit


def rows_update(
    model: type[models.Model],
    columns: tuple[str, ...],
    rows: list[tuple[int, tuple[Any, ...]]],
    same: dict[str, dt.datetime],
) -> None:
    """Rows of `model` given new values by id — `rows` is (id, values of the `columns`, prepared
    for the database) — and the moments in `same` set on every one of them: `WITH v(id, …) AS
    (VALUES …) UPDATE … FROM v`, one statement per UPDATE_ROWS rows on either database
    (SQLite since 3.33). On PostgreSQL each value is cast to its column's type: a column of the
    list that is NULL on every row would be text."""
    if not rows:
        return
    db = _db()
    quote = db.ops.quote_name
    table = quote(model._meta.db_table)
    by_column = {field.column: field for field in model._meta.concrete_fields}
    names = ", ".join(quote(c) for c in columns)
    assigned = []
    for c in columns:
        value = f"v.{quote(c)}"
        if db.vendor == "postgresql":
            value = f"CAST({value} AS {by_column[c].db_type(db)})"
        assigned.append(f"{quote(c)} = {value}")
    assigned += [f"{quote(c)} = %s" for c in same]
    stamps = [db.ops.adapt_datetimefield_value(moment) for moment in same.values()]
    one = f"({', '.join(['%s'] * (1 + len(columns)))})"
    statements = []
    for start in range(0, len(rows), UPDATE_ROWS):
        part = rows[start : start + UPDATE_ROWS]
        statements.append(
            (
                f"WITH v(id, {names}) AS (VALUES {', '.join([one] * len(part))})"  # noqa: S608 -- our table and columns, values bound
                f" UPDATE {table} SET {', '.join(assigned)} FROM v WHERE {table}.id = v.id",
                [value for row_id, values in part for value in (row_id, *values)] + stamps,
            )
        )
    for statement in statements:  # one by one, unless held back to go together (`writes_together`)
        statements_run([statement])


def statements_run(statements: list[tuple[str, list[Any]]]) -> None:
    """Statements whose results nobody reads, run in order in the caller's transaction. On
    PostgreSQL they go to the server in one round trip: Django's psycopg cursors bind values on
    the client, so each statement is written out whole (`mogrify`, as `execute` would) and the
    server runs the query string's statements one after the other, all or nothing with the
    transaction. Inside `writes_together` they wait to go with the others. SQLite takes one
    statement per call: there they run one by one."""
    if not statements:
        return
    db = _db()
    waiting = getattr(db, _WAITING, None)
    if waiting is not None:
        waiting.extend(statements)
        return
    with db.cursor() as cursor:
        if db.vendor == "postgresql" and len(statements) > 1:
            written = LiteralWriter(cursor.cursor)  # psycopg's ClientCursor, under Django's wrapper
            cursor.execute(";\n".join(written(sql, params) for sql, params in statements))
            return
        for sql, params in statements:
            cursor.execute(sql, params)


_WAITING = "_salesloop_writes_waiting"


@contextmanager
def writes_together() -> Iterator[None]:
    """On PostgreSQL, the writes made inside through `statements_run`, `rows_update` and
    `intake.imports.bulk.rows_append` are held back and sent together, in order, when the block
    ends: one round trip instead of one each. For writes nothing inside reads back — a webhook
    batch's first moves, audit entries, assignments, rotations, owners, funnel and indicator rows
    were eleven round trips, each waited for while the batch held the intake's turn. A failing
    write fails the block's end. Errors are not to be caught inside the block: a write held back in
    a savepoint rolled back there would still be sent. Elsewhere (SQLite, or nested) the block
    changes nothing."""
    db = _db()
    if db.vendor != "postgresql" or writes_waiting(db):
        yield
        return
    waiting: list[tuple[str, list[Any]]] = []
    setattr(db, _WAITING, waiting)
    try:
        yield
    finally:
        setattr(db, _WAITING, None)
    statements_run(waiting)


def writes_waiting(db: BaseDatabaseWrapper) -> bool:
    """Whether writes on `db` are being held back (`writes_together`)."""
    return getattr(db, _WAITING, None) is not None
