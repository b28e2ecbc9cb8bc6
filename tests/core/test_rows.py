"""core.rows reads model rows with hand-written SQL: the instances must be the ORM's, value for
value — JSON decoded, datetimes aware, foreign keys as ids — on both databases."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import models

from salesloop.core.rows import first_row, model_rows
from salesloop.intake.models import InboundEvent, Source
from salesloop.intake.services import source_create

pytestmark = pytest.mark.django_db


def _values(instance: models.Model) -> dict[str, object]:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_a_row_read_by_hand_is_the_instance_the_orm_reads():
    source = source_create(actor=None, kind="api", name="接口", secret="s" * 24)
    Source.objects.filter(pk=source.pk).update(field_mapping={"phone": "tel", "名字": ["name"]})
    got = first_row(Source, "slug = %s", [source.slug], order_by="")
    expected = Source.objects.get(pk=source.pk)
    assert got is not None and _values(got) == _values(expected)
    assert got.field_mapping == {"phone": "tel", "名字": ["name"]}  # decoded, not text
    assert got.created_at.tzinfo is not None
    assert not got._state.adding  # saving it updates the row
    got.name = "接口2"
    got.save(update_fields=["name"])
    assert Source.objects.get(pk=source.pk).name == "接口2"


def test_rows_come_in_the_order_asked_and_none_when_nothing_matches():
    source = source_create(actor=None, kind="api", name="接口", secret="s" * 24)
    at = dt.datetime(2026, 11, 1, 8, tzinfo=dt.UTC)
    for n in range(3):
        InboundEvent.objects.create(source=source, external_id=f"e{n}", body="{}", received_at=at)
    found = model_rows(InboundEvent, "source_id = %s", [source.pk], order_by="id DESC", limit=2)
    assert [e.external_id for e in found] == ["e2", "e1"]
    assert found[0].received_at == at and found[0].source_id == source.pk
    assert first_row(Source, "slug = %s", ["no-such-slug"]) is None


def test_a_join_read_by_hand_converts_each_value_as_the_orm_does(org):
    """`sql_rows` through the roster routing reads every batch (routing.roster.roster_load): JSON
    lists decoded, times as times, booleans as booleans — what the ORM's values_list gives."""
    from salesloop.accounts.models import User
    from salesloop.core import clock
    from salesloop.routing.models import RepProfile
    from salesloop.routing.roster import roster_load

    RepProfile.objects.create(
        user=org.alice, specialties=["制造业", "教育"], max_open_leads=30, max_new_per_day=5,
        work_days=[1, 2, 3], work_start=dt.time(9, 30), work_end=dt.time(18, 0),
    )  # fmt: skip
    User.objects.filter(pk=org.bob.pk).update(is_active=False)
    now = clock.now()
    roster = roster_load(leaves_from=now, leaves_to=now)
    expected = {
        row[0]: row
        for row in User.objects.filter(role__in=["rep", "manager"]).values_list(
            "id", "region__code", "team__name", "is_active", "rep_profile__specialties",
            "rep_profile__max_open_leads", "rep_profile__max_new_per_day", "rep_profile__work_days",
            "rep_profile__work_start", "rep_profile__work_end",
        )
    }  # fmt: skip
    assert set(roster.reps) == set(expected)
    for user_id, rep in roster.reps.items():
        _, region, team, active, specialties, max_open, max_new, days, start, end = expected[user_id]
        assert (rep.region, rep.team, rep.active) == (region, team, active)
        assert rep.active is active  # a boolean, not SQLite's 0 or 1
        assert rep.specialties == frozenset(specialties or ())
        assert (rep.max_open_leads, rep.max_new_per_day) == (max_open, max_new)
        assert rep.work_days == frozenset(days or ())
        assert (rep.work_start, rep.work_end) == (start, end)
    alice = roster.reps[org.alice.pk]
    assert alice.work_start == dt.time(9, 30) and alice.specialties == {"制造业", "教育"}
    assert alice.work_days == {1, 2, 3}


def test_instances_inserted_by_hand_are_the_rows_bulk_create_makes(org):
    """`instances_insert` stands in for `bulk_create` on a webhook batch's hot path: the same row
    for the same instance, value for value, ids set on the instances, a cached foreign-key object's
    new id taken, an unsaved one refused."""
    from salesloop.core.rows import instances_insert
    from salesloop.crm.models import Contact, Customer

    def pair(n: int) -> tuple[Customer, Contact]:
        customer = Customer(
            name=f"公司{n}", name_key=f"公司{n}", industry="制造业", province_id="31", city="上海"
        )
        return customer, Contact(customer=customer, name=f"联系人{n}", phone=f"+861380000000{n}", email="")

    by_hand, by_orm = [pair(1), pair(2)], [pair(3), pair(4)]
    instances_insert([customer for customer, _ in by_hand])
    instances_insert([contact for _, contact in by_hand])
    Customer.objects.bulk_create([customer for customer, _ in by_orm])
    for _, contact in by_orm:
        contact.customer = contact.customer
    Contact.objects.bulk_create([contact for _, contact in by_orm])
    for (customer, contact), (_, orm_contact) in zip(by_hand, by_orm, strict=True):
        assert customer.pk is not None and not customer._state.adding
        assert contact.customer_id == customer.pk
        got, expected = (
            _values(Contact.objects.get(pk=contact.pk)),
            _values(Contact.objects.get(pk=orm_contact.pk)),
        )
        for name in ("id", "customer_id", "name", "phone"):
            got.pop(name), expected.pop(name)
        assert got.keys() == expected.keys()
        assert got["created_at"].tzinfo is not None
        stored = _values(Customer.objects.get(pk=customer.pk))
        assert (stored["province_id"], stored["industry"], stored["name"]) == ("31", "制造业", customer.name)
    # the events of a batch: JSON headers, text, ids in the order given
    source = source_create(actor=None, kind="api", name="接口", secret="s" * 24)
    events = [
        InboundEvent(source=source, external_id=f"x{n}", body="{}", headers={"X-Request-Id": f"r{n}"})
        for n in range(3)
    ]
    instances_insert(events)
    assert [e.pk for e in events] == sorted(e.pk for e in events)
    assert [InboundEvent.objects.get(pk=e.pk).headers for e in events] == [
        {"X-Request-Id": f"r{n}"} for n in range(3)
    ]
    unsaved = Customer(name="未存", name_key="未存")
    with pytest.raises(ValueError, match="not saved"):
        instances_insert([Contact(customer=unsaved, name="某人", phone="+8613800000009")])


def test_statements_nothing_reads_back_run_in_order_and_on_postgresql_in_one_round_trip():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from salesloop.core.rows import statements_run

    a = source_create(actor=None, kind="api", name="甲", secret="s" * 24)
    b = source_create(actor=None, kind="api", name="乙", secret="s" * 24)
    table = connection.ops.quote_name(Source._meta.db_table)
    with CaptureQueriesContext(connection) as captured:
        statements_run(
            [
                (f"UPDATE {table} SET name = %s WHERE id = %s", ["它's; 一", a.pk]),  # noqa: S608
                # runs after the first: it reads what the first wrote
                (
                    f"UPDATE {table} SET name = (SELECT name FROM {table} WHERE id = %s) || %s"  # noqa: S608
                    " WHERE id = %s",
                    [a.pk, "%s", b.pk],
                ),
            ]
        )
    assert Source.objects.get(pk=a.pk).name == "它's; 一"
    assert Source.objects.get(pk=b.pk).name == "它's; 一%s"
    assert len(captured.captured_queries) == (1 if connection.vendor == "postgresql" else 2)


def test_a_failing_statement_of_several_fails_the_call_and_keeps_none_of_them():
    from django.db import IntegrityError, connection, transaction

    from salesloop.core.rows import statements_run

    a = source_create(actor=None, kind="api", name="甲", secret="s" * 24)
    b = source_create(actor=None, kind="api", name="乙", secret="s" * 24)
    table = connection.ops.quote_name(Source._meta.db_table)
    with pytest.raises(IntegrityError), transaction.atomic():
        statements_run(
            [
                (f"UPDATE {table} SET name = %s WHERE id = %s", ["改了", a.pk]),  # noqa: S608
                (f"UPDATE {table} SET slug = %s WHERE id = %s", [a.slug, b.pk]),  # noqa: S608 -- taken
            ]
        )
    assert Source.objects.get(pk=a.pk).name == "甲"


def test_writes_held_back_go_together_at_the_end_of_the_block_in_order():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from salesloop.core.rows import rows_update, statements_run, writes_together
    from salesloop.intake.imports.bulk import rows_append

    a = source_create(actor=None, kind="api", name="甲", secret="s" * 24)
    table = connection.ops.quote_name(Source._meta.db_table)
    together = connection.vendor == "postgresql"
    with CaptureQueriesContext(connection) as captured, writes_together():
        statements_run([(f"UPDATE {table} SET name = %s WHERE id = %s", ["一", a.pk])])  # noqa: S608
        rows_update(Source, ("name",), [(a.pk, ("一二",))], {})
        rows_append(InboundEvent, ("source_id", "body", "status"), [(a.pk, "它's", "failed")])
        # held back on PostgreSQL: not yet in the database
        assert Source.objects.get(pk=a.pk).name == ("甲" if together else "一二")
        assert InboundEvent.objects.filter(source=a).count() == (0 if together else 1)
    assert Source.objects.get(pk=a.pk).name == "一二"  # in order: the update after the statement
    assert InboundEvent.objects.get(source=a).body == "它's"
    writes = [q for q in captured.captured_queries if not q["sql"].startswith("SELECT")]
    # (SQLite's bulk rows go to the sqlite3 connection itself, which the capture does not see)
    assert len(writes) == (1 if together else 2), [q["sql"][:80] for q in writes]


def test_instances_given_their_ids_first_are_inserted_with_the_writes_held_back(org):
    """On PostgreSQL, inside `writes_together`, `ids_assign` draws every group's ids from their
    sequences in one round trip, in order, and the inserts of those instances wait for the block's
    end like the other writes — a contact naming its new customer by the id given. Elsewhere the
    instances keep no id and are inserted at once, their ids read back."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from salesloop.core.rows import ids_assign, instances_insert, writes_together
    from salesloop.crm.models import Contact, Customer

    together = connection.vendor == "postgresql"
    customers = [Customer(name=f"公司{n}", name_key=f"公司{n}") for n in range(2)]
    contacts = [
        Contact(customer=customers[n % 2], name=f"联系人{n}", phone=f"+86138000001{n:02d}") for n in range(3)
    ]
    with CaptureQueriesContext(connection) as captured, writes_together():
        ids_assign([customers, [], contacts])
        assigned = [c.pk for c in customers], [c.pk for c in contacts]
        instances_insert(customers)
        instances_insert(contacts)
        held = Contact.objects.filter(name__startswith="联系人").count()
    if together:
        assert all(assigned[0]) and all(assigned[1])
        assert assigned[0] == sorted(assigned[0]) and assigned[1] == sorted(assigned[1])
        assert held == 0  # written when the block ended
        reads = [q["sql"] for q in captured.captured_queries if "nextval" in q["sql"]]
        assert len(reads) == 1
    else:
        assert assigned == ([None, None], [None, None, None])
        assert held == 3
    stored = {c.pk: (c.name, c.customer_id) for c in Contact.objects.filter(name__startswith="联系人")}
    assert stored == {c.pk: (c.name, customers[n % 2].pk) for n, c in enumerate(contacts)}
    assert set(Customer.objects.filter(name__startswith="公司").values_list("pk", flat=True)) == {
        c.pk for c in customers
    }
    with writes_together():
        if together:
            with pytest.raises(ValueError, match="unsaved"):
                ids_assign([customers])
            mixed = [Customer(name="甲", name_key="甲"), Customer(name="乙", name_key="乙")]
            ids_assign([mixed[:1]])
            with pytest.raises(ValueError, match="others not"):
                instances_insert(mixed)


def test_a_failing_write_held_back_fails_the_end_of_the_block():
    from django.db import IntegrityError, connection, transaction

    from salesloop.core.rows import statements_run, writes_together

    a = source_create(actor=None, kind="api", name="甲", secret="s" * 24)
    b = source_create(actor=None, kind="api", name="乙", secret="s" * 24)
    table = connection.ops.quote_name(Source._meta.db_table)
    with pytest.raises(IntegrityError), transaction.atomic(), writes_together():
        statements_run([(f"UPDATE {table} SET name = %s WHERE id = %s", ["改了", a.pk])])  # noqa: S608
        statements_run([(f"UPDATE {table} SET slug = %s WHERE id = %s", [a.slug, b.pk])])  # noqa: S608
    assert Source.objects.get(pk=a.pk).name == "甲"


def test_questions_asked_together_are_answered_each_as_model_rows_answers_it():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from salesloop.core.rows import Question, model_rows_together

    a = source_create(actor=None, kind="api", name="甲", secret="s" * 24)
    b = source_create(actor=None, kind="api", name="乙", secret="s" * 24)
    questions = [
        Question(Source, "name IN (%s, %s)", ["乙", "甲"]),
        Question(Source, "name = %s", ["没有"]),  # an empty answer keeps its place
        Question(Source, "slug = %s", [b.slug], lock=True, order_by=""),
    ]
    with CaptureQueriesContext(connection) as captured:
        answers = model_rows_together(questions)
    assert [[s.pk for s in answer] for answer in answers] == [[a.pk, b.pk], [], [b.pk]]
    assert [_values(s) for s in answers[0]] == [_values(Source.objects.get(pk=pk)) for pk in (a.pk, b.pk)]
    assert answers[2][0].field_mapping == Source.objects.get(pk=b.pk).field_mapping  # JSON decoded
    assert len(captured.captured_queries) == (1 if connection.vendor == "postgresql" else 3)


def test_bulk_rows_carry_a_moment_as_text_and_store_the_instant_it_names(org):
    """`bulk.moment`: a datetime goes into bulk rows as text — psycopg formats a datetime for COPY
    through `str()` once per value, ~17× slower than copying the same text — and the row keeps the
    instant to the microsecond, whether COPY writes it or the held-back INSERT does."""
    from salesloop.core.rows import writes_together
    from salesloop.intake.imports.bulk import moment, rows_append

    source = source_create(actor=None, kind="api", name="甲", secret="s" * 24)
    at = dt.datetime(2026, 11, 30, 11, 58, 12, 16113, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    carried = moment(at)
    assert isinstance(carried, str)
    rows_append(
        InboundEvent,
        ("source_id", "external_id", "body", "received_at"),
        [(source.pk, "copy", "{}", carried)],
    )
    with writes_together():
        rows_append(
            InboundEvent,
            ("source_id", "external_id", "body", "received_at"),
            [(source.pk, "held", "{}", carried)],
        )
    stored = dict(InboundEvent.objects.filter(source=source).values_list("external_id", "received_at"))
    assert stored == {"copy": at, "held": at}
    assert stored["copy"].utcoffset() == dt.timedelta(0)  # read back in UTC, the same instant


def _literal_values():
    from hypothesis import strategies as st
    from psycopg.types.json import Jsonb

    text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers(-(10**12), 10**12) | text,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
        max_leaves=6,
    )
    return st.one_of(
        st.none(),
        text,
        st.sampled_from(["", "'", "''", "\\", "%", "%%", "%s", "%(x)s", "O'Brien\\n", "张三 '有限' 公司"]),
        st.integers(-(2**63), 2**63 - 1),
        st.booleans(),
        st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**9), max_value=10**9),
        st.datetimes(
            min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
        ),
        st.dates(min_value=dt.date(1970, 1, 1), max_value=dt.date(2200, 1, 1)),
        json_values.map(Jsonb),
        st.lists(st.integers(-(2**31), 2**31 - 1), max_size=4),
    )


def test_statements_written_out_by_hand_are_what_psycopg_writes_and_read_back_the_values():
    """`LiteralWriter` fills a statement's `%s` in as psycopg's `mogrify` does, without parsing the
    query: for statements of more than 50 values (which psycopg parses afresh each time) the text
    is mogrify's, byte for byte, and the server reads every value back as it was sent."""
    from django.db import connection
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from psycopg.types.json import Jsonb

    from salesloop.core.rows import LiteralWriter

    if connection.vendor != "postgresql":
        pytest.skip("statements are written out only on PostgreSQL")

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(_literal_values(), min_size=1, max_size=80))
    def check(values):
        with connection.cursor() as cursor:
            raw = cursor.cursor
            sql = "SELECT '100%%', " + ", ".join(["%s"] * len(values))
            written = LiteralWriter(raw)(sql, values)
            assert written == raw.mogrify(sql, values)
            cursor.execute(written)
            got = cursor.fetchone()
        assert got[0] == "100%"  # a literal percent, written %% as psycopg asks
        for sent, back in zip(values, got[1:], strict=True):
            if isinstance(sent, Jsonb):  # Django's connection reads JSON as its text
                assert json.loads(back) == sent.obj
            elif sent == []:  # an empty array is written untyped, and read back as its text
                assert back == "{}"
            else:
                assert back == sent

    check()


def test_a_statement_whose_values_do_not_fit_its_placeholders_is_refused_naming_it():
    from django.db import connection

    from salesloop.core.rows import LiteralWriter

    if connection.vendor != "postgresql":
        pytest.skip("statements are written out only on PostgreSQL")
    with connection.cursor() as cursor:
        written = LiteralWriter(cursor.cursor)
        assert written("SELECT 1 WHERE 'a%%' = 'a%%'", None) == "SELECT 1 WHERE 'a%%' = 'a%%'"  # as sent
        for sql, values in (("SELECT %s, %s", [1]), ("SELECT %s", [1, 2]), ("SELECT %(x)s", [1])):
            with pytest.raises(ValueError, match="SELECT"):
                written(sql, values)
