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


def test_a_contact_is_indexed_by_email_only_where_it_has_one_and_identity_still_finds_it_by_that(org):
    """Most lead lists leave the e-mail blank: a contact without one adds no entry to the e-mail
    index (an import of a million rows wrote ~790,000 entries for the blank), and the identity
    look-up (`intake.services._contact_find`, repeating the index's condition) still uses it."""
    from salesloop.core.rows import not_blank
    from salesloop.crm.models import Contact
    from salesloop.intake.channels import Arrival
    from salesloop.intake.services import Person, _contact_find

    definition = _index_sql("crm_contact")["contact_email_idx"]
    assert "email" in definition and "where" in definition and "''" in definition
    plan = _plan(f"SELECT id FROM crm_contact WHERE {not_blank('email')} AND email = %s", ["a@b.cn"])  # noqa: S608 -- our table
    assert "contact_email_idx" in plan, plan
    with_email = Contact.objects.create(name="甲", email="jia@example.com")
    Contact.objects.create(name="乙", email="")
    found = _contact_find(
        Person(phone="", phone_kind="", province_code=None, city=""), Arrival(email="JIA@example.com ")
    )
    assert found is not None and found.pk == with_email.pk
    assert (
        _contact_find(Person(phone="", phone_kind="", province_code=None, city=""), Arrival(email="")) is None
    )


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


LIST_INDEXES = [
    ("crm_lead", "lead_owner_idx", "owner_id = %s", [1]),
    ("crm_lead", "lead_owner_stage_idx", "owner_id = %s AND stage_id = %s", [1, 1]),
    ("crm_lead", "lead_region_idx", "region_id = %s", [1]),
    ("crm_lead", "lead_region_stage_idx", "region_id = %s AND stage_id = %s", [1, 1]),
    ("crm_lead", "lead_stage_idx", "stage_id = %s", [1]),
    ("crm_lead", "lead_status_idx", "status = %s", ["open"]),
    ("crm_lead", "lead_source_idx", "source = %s", ["import"]),
    ("intake_inboundevent", "event_status_idx", "status = %s", ["failed"]),
]


@pytest.mark.parametrize(("table", "name", "where", "params"), LIST_INDEXES)
def test_a_list_index_runs_its_id_ascending_and_still_gives_the_newest_first_without_sorting(
    org, table, name, where, params
):
    # An arrival's id is the largest: ascending, it lands at the right end of its key's range
    # (packed 90/10 splits) instead of the left (half-empty pages).
    definition = _index_sql(table)[name]
    assert definition.rstrip(")").endswith('"id"') or definition.rstrip(")").endswith(" id"), definition
    assert " desc" not in definition, definition
    # keyset paging, newest first: the index read backwards, no sort step
    plan = _plan(f"SELECT id FROM {table} WHERE {where} ORDER BY id DESC LIMIT 50", params)  # noqa: S608 -- our tables
    assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan


def test_only_scored_leads_are_indexed_by_health_and_the_red_flag_filter_still_uses_it(org):
    definition = _index_sql("crm_lead")["lead_health_idx"]
    assert "health_score" in definition and "is not null" in definition, definition
    plan = _plan("SELECT id FROM crm_lead WHERE health_score < %s", [40])
    assert "lead_health_idx" in plan, plan


def test_no_index_counts_a_reps_open_leads_since_routing_keeps_those_counts_as_rows(org):
    # routing.loads keeps them (OpenLeads); an index of (owner, status) cost every arrival an insert
    assert ["owner_id", "status"] not in _columns("crm_lead").values()


def test_only_events_that_came_with_an_address_are_indexed_for_the_rate_limit(org):
    definition = _index_sql("intake_inboundevent")["event_remote_time_idx"]
    assert "remote_addr" in definition and "is not null" in definition, definition
    plan = _plan(
        "SELECT COUNT(*) FROM intake_inboundevent WHERE remote_addr = %s AND received_at >= %s",
        ["10.0.0.1", "2026-01-01"],
    )
    assert "event_remote_time_idx" in plan, plan
