"""What an arriving lead pays in indexes (SPEC C1 at a campaign's or an import's rate): every index
of a table is one more insert per row. Columns nearly every row leaves empty are indexed only where
set, and still serve their look-ups; no column carries two indexes for one purpose — on both
databases, as migrated."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def _index_sql(table: str) -> dict[str, str]:
    """Index name → its definition, lower-cased, as the database keeps it."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        else:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s", [table]
            )
        return {name: (sql or "").lower() for name, sql in cursor.fetchall()}


def _columns(table: str) -> dict[str, list[str]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {name: c["columns"] for name, c in constraints.items() if c["index"] and not c["primary_key"]}


def _plan(sql: str, params: list[object]) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return "\n".join(str(row) for row in cursor.fetchall())


@pytest.mark.parametrize(
    ("table", "column", "name"),
    [
        ("crm_lead", "merged_into_id", "lead_merged_into_idx"),
        ("crm_lead", "referred_by_id", "lead_referred_by_idx"),
        ("routing_assignment", "previous_owner_id", "assignment_previous_owner_idx"),
    ],
)
def test_a_key_nearly_every_row_leaves_empty_is_indexed_only_where_set(org, table, column, name):
    on_column = [index for index, columns in _columns(table).items() if columns == [column]]
    assert on_column == [name]
    assert f"{column}" in _index_sql(table)[name] and "is not null" in _index_sql(table)[name]
    # and the look-up by the key (the delete collector's, a lead's merged leads) still uses it
    plan = _plan(f"SELECT id FROM {table} WHERE {column} = %s", [1])  # noqa: S608 -- our tables
    assert name in plan, plan


def test_no_column_of_the_arrival_tables_carries_a_second_index_for_the_same_look_ups(org):
    # the event's source: served by (source, received_at) and the unique (source, external_id)
    event = _columns("intake_inboundevent")
    assert ["source_id"] not in event.values()
    assert ["source_id", "received_at"] in event.values()
    # a customer's company key and province: one plain index each, no LIKE copy (PostgreSQL)
    customer = _index_sql("crm_customer")
    assert not [n for n, sql in customer.items() if "pattern_ops" in sql]
    assert sorted(c for c in _columns("crm_customer").values() if c != ["id"]) == [
        ["name_key"],
        ["province_id"],
    ]
