"""An import routes chunk after chunk; each chunk needs every rep's loads (open leads, new today),
which at a million leads cost a quarter of a second or more to count. The chunks of one import
carry them over — their own decisions counted in — until another connection has committed: SQLite
says so (`data_version`), and on PostgreSQL the chunks' snapshots do (`routing.services.Seen`); there
the counts are also carried while they are younger than LOAD_REFRESH_SECONDS. Either way each trace
shows the loads the rep really had."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from salesloop.core import clock
from salesloop.crm.models import Lead, LeadStatus
from salesloop.intake.imports import services
from salesloop.routing.engine import rotation_key
from salesloop.routing.models import Assignment, RoundRobinState
from salesloop.routing.selectors import assignment_explanation
from salesloop.routing.services import LOAD_REFRESH_SECONDS
from tests import factories
from tests.intake.test_imports import csv_bytes, job_of
from tests.routing.conftest import definition, in_force, rule
from tests.routing.test_loads import counted_loads, kept_loads

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _closed_elsewhere(lead_id: int) -> None:
    """A rep closes a lead through another connection, between two chunks of the import."""

    def close() -> None:
        try:
            Lead.objects.filter(pk=lead_id).update(status=LeadStatus.LOST)
        finally:
            connections.close_all()

    thread = threading.Thread(target=close)
    thread.start()
    thread.join()


def _open_lead_counts(queries: list[dict]) -> int:
    return sum(1 for q in queries if "FROM routing_openleads" in q["sql"])


@pytest.mark.parametrize(
    ("someone_else_writes", "counts_grow_old"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_an_import_carries_loads_over_its_chunks_until_someone_else_has_changed_them(
    org, monkeypatch, someone_else_writes, counts_grow_old
):
    # given an east round-robin in force, an open lead of alice's, and a file of six 上海 people
    in_force(org.director, definition(rule("east", 10, when={"regions": ["east"]}, regions=["east"])))
    before = factories.lead_make(owner=org.alice)
    # (and the rule has routed before: a rule's first batch makes its rotation's row, then locks
    # it and counts the loads again)
    RoundRobinState.objects.bulk_create(
        [RoundRobinState(key=rotation_key(key)) for key in ("east", "fallback")]
    )
    monkeypatch.setattr(services, "CHUNK_ROWS", 2)
    monkeypatch.setattr(services, "CHUNK_ROWS_MAX", 2)
    rows = [[f"客户{i}", f"138162{i:05d}", "", "", "", "", ""] for i in range(6)]
    job = services.import_start(actor=org.carol, job=job_of(org.carol, csv_bytes(rows)), enqueue=False)
    # and, if so, alice's lead closed through another connection before the second chunk, and
    # the first chunk's counts older than LOAD_REFRESH_SECONDS by then
    commit = services._chunk_commit
    calls = {"n": 0}

    def chunk_commit(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2 and someone_else_writes:
            _closed_elsewhere(before.pk)
        if calls["n"] == 2 and counts_grow_old:
            clock.set_now(clock.now() + dt.timedelta(seconds=LOAD_REFRESH_SECONDS + 1))
        return commit(*args, **kwargs)

    monkeypatch.setattr(services, "_chunk_commit", chunk_commit)
    # when the file is imported in three chunks
    with CaptureQueriesContext(connection) as captured:
        services.import_run(job_id=job.pk)
    # then open leads were counted once — and once more after the other connection's write (on
    # PostgreSQL once the counts are old), not because the counts grew old while only the import
    # wrote
    recounted = someone_else_writes and (connection.vendor == "sqlite" or counts_grow_old)
    assert calls["n"] == 3
    assert _open_lead_counts(captured.captured_queries) == (2 if recounted else 1)
    # and every trace shows each candidate's open leads as they were: alice's earlier lead (until
    # it was closed) and the leads this import gave out before
    given = {org.alice.pk: 0, org.bob.pk: 0}
    assignments = Assignment.objects.filter(lead__source="import").order_by("id")
    assert assignments.count() == 6
    for position, assignment in enumerate(assignments):
        earlier = 1 if not (recounted and position >= 2) else 0
        (east,) = [r for r in assignment_explanation(assignment)["rules"] if r["id"] == "east"]
        shown = {c["user_id"]: c["open_leads"] for c in east["candidates"]}
        assert shown == {org.alice.pk: given[org.alice.pk] + earlier, org.bob.pk: given[org.bob.pk]}, position
        given[assignment.assignee_id] += 1
    # and the loads the database keeps counted the import's own inserts (COPY on PostgreSQL, made
    # without the foreign keys' triggers) and the lead closed elsewhere
    assert kept_loads() == counted_loads()


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's snapshots; SQLite has data_version"
)
def test_a_transaction_in_progress_at_the_count_is_seen_when_it_commits_and_a_reader_never(org):
    import psycopg

    from salesloop.routing.services import Seen

    given = connection.settings_dict
    params = {"dbname": given["NAME"], "user": given["USER"], "host": given["HOST"], "port": given["PORT"]}
    with psycopg.connect(**params) as writer, psycopg.connect(**params, autocommit=True) as reader:
        writer.execute("SELECT pg_current_xact_id()")  # a writing transaction, in progress
        counted = Seen.now()
        ours = frozenset({counted.xid})
        reader.execute("SELECT count(*) FROM crm_lead")  # reads: no transaction id
        assert Seen.now().only_these_since(counted, ours)
        writer.commit()
        assert not Seen.now().only_these_since(counted, ours)
