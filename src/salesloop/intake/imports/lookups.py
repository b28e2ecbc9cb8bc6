"""The look-ups of a chunk: every contact, lead and customer its rows name, in one query each.

Raw SQL on purpose: the ORM prepares each of 10,000 values of an `__in` lookup separately, which
costs more than the query itself, and SQLite needs its join order spelled out (below).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson
from django.db import connection

from salesloop.core.rows import not_blank
from salesloop.crm.models import Contact, Customer, Lead


def _rows_matching(
    select: str,
    table: str,
    column: str,
    values: Collection[Any],
    *,
    join: str = "",
    also: str = "",
    value_type: str = "text",
) -> list[Any]:
    """The rows of `table` (alias t) whose `column` is one of `values`, ordered by id, in one query
    whatever the number of values. Both databases are told the plan: the list outside, one probe
    of the table's index per value inside — so a chunk costs the same against an empty table
    and against millions of rows.

    SQLite: the values arrive as one JSON array, joined with CROSS JOIN, which fixes the join
    order. With `IN (…)` of a few thousand values SQLite's planner (it has no statistics)
    prefers to scan the whole table once the list is long, and every chunk would read every
    customer.

    PostgreSQL: the values as elements of the same JSON array, and per value a LATERAL subquery
    that `OFFSET 0` keeps from being flattened into a join. With `= ANY(array)` of 10,000 values,
    or a plain join, the planner — working from statistics that lag behind a table an import is
    filling — chose sequential scans and hash joins: at 800k contacts 150–300 ms a chunk instead
    of ~40 ms, growing with the table (measured, bench/imports.py). JSON rather than an array
    parameter: psycopg writes an array out element by element in Python, escaping each, ~3% of
    an import's time in the run's process (py-spy); the JSON text is encoded in C and sent as
    one escaped string."""
    if connection.vendor == "postgresql":
        outer = ""
        if join:  # the joined table's columns are read per found row, by its primary key
            outer, join = join, ""
        sql = (
            f"SELECT {select} FROM json_array_elements_text(%s::json) AS wanted(value) "  # noqa: S608 -- names from model meta
            f'CROSS JOIN LATERAL (SELECT * FROM "{table}" t WHERE t."{column}" = '
            f"CAST(wanted.value AS {value_type}) {also} OFFSET 0) t {outer}"
        )
    else:
        sql = (
            f'SELECT {select} FROM json_each(%s) AS wanted CROSS JOIN "{table}" t {join} '  # noqa: S608 -- names from model meta
            f'WHERE t."{column}" = wanted.value {also}'
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, [orjson.dumps(list(values)).decode()])
        return sorted(cursor.fetchall())


def contacts_by(column: str, values: Collection[str]) -> list[tuple[Any, ...]]:
    """(id, value, customer id, customer's province, industry and city) of the contacts with one of
    the values (the customer's facts are what routing reads of a new lead for a known person).
    `not_blank` repeats the condition of the partial unique indexes on phone and WeCom id:
    without it neither SQLite nor PostgreSQL (for lists over 100) can prove the index applies."""
    return _rows_matching(
        f't.id, t."{column}", t.customer_id, cu.province_id, cu.industry, cu.city',
        Contact._meta.db_table,
        column,
        values,
        join=f'LEFT JOIN "{Customer._meta.db_table}" cu ON cu.id = t.customer_id',
        also=f"AND {not_blank(f't.{column}')}",
    )


def leads_of(contact_ids: list[int]) -> list[tuple[Any, ...]]:
    """All leads of these contacts, oldest first; open and unmerged is filtered by the caller, so
    the contact index is the planner's only choice (with status in the query, SQLite walks every
    open lead instead)."""
    return _rows_matching(
        "t.id, t.contact_id, t.owner_id, t.title, t.status, t.merged_into_id",
        Lead._meta.db_table,
        "contact_id",
        contact_ids,
        value_type="bigint",
    )


def customers_by_key(keys: Collection[str]) -> list[tuple[Any, ...]]:
    """(id, company key, province, industry, city) of the customers with one of the keys."""
    return _rows_matching(
        "t.id, t.name_key, t.province_id, t.industry, t.city", Customer._meta.db_table, "name_key", keys
    )
