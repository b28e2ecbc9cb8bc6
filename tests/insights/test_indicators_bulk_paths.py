"""Leads written in bulk — a webhook batch (intake.burst) and an import chunk — bypass the
services that keep the indicator rows (C9); they refresh them in bulk, so conversion counts them at
once, with the owner routing gave them, as a rebuild would."""

from __future__ import annotations

import json

import pytest

from salesloop.crm.models import Lead
from salesloop.insights.funnel_rollup import funnel_rollup_rebuild
from salesloop.insights.indicators.facts import indicator_facts_rebuild, indicator_facts_refresh_many
from salesloop.insights.models.indicators import IndicatorLead, IndicatorSpan
from salesloop.intake.burst import Delivery, deliveries_receive
from salesloop.intake.services import source_create
from salesloop.pipeline.models import Stage, StageMove
from tests import factories
from tests.insights.test_funnel_rollup import tables as funnel_tables
from tests.intake.test_imports import csv_bytes, job_of, run
from tests.routing.conftest import definition, in_force, rule

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _kept() -> tuple[list, list]:
    """Every column of every row (but the spans' own ids): the rows an arrival writes from its
    leads alone must be a rebuild's, to the second."""
    return (
        sorted(
            IndicatorLead.objects.values_list(
                "lead_id", "region_id", "owner_id", "arrived_at", "needs_confirmed_at"
            )
        ),
        sorted(
            IndicatorSpan.objects.values_list(
                "lead_id", "region_id", "owner_id", "rank", "entered_at", "entered_s", "left_at"
            )
        ),
    )


def test_a_webhook_batch_keeps_the_indicator_rows_of_its_new_leads(org):
    # given a round-robin over 华东's reps in force
    in_force(org.admin, definition(rule("east", 1, regions=["east"])))
    source = source_create(actor=None, kind="api", name="burst", secret="x" * 20)
    items = [{"id": f"b{n}", "name": f"客户{n}", "phone": f"1370000100{n}"} for n in range(3)]

    # when three deliveries arrive together
    deliveries_receive(
        [Delivery(source=source, body=json.dumps(i, ensure_ascii=False), external_id=i["id"]) for i in items]
    )

    # then each new lead has its row, with the owner routing gave it — as a rebuild gives
    leads = list(Lead.objects.filter(source="api"))
    assert len(leads) == 3
    kept = _kept()
    assert {row[0]: row[2] for row in kept[0]} == {lead.pk: lead.owner_id for lead in leads}
    assert all(row[2] is not None for row in kept[0])
    indicator_facts_rebuild()
    assert _kept() == kept


def test_an_import_keeps_the_indicator_rows_of_its_new_leads(org, django_capture_on_commit_callbacks):
    rows = [["甲", "15805710001", "", "", "", "", ""], ["乙", "15805710002", "", "", "", "", ""]]
    job = run(job_of(org.carol, csv_bytes(rows)), org.carol, django_capture_on_commit_callbacks)

    assert job.created == 2
    kept = _kept()
    assert len(kept[0]) == 2 and len(kept[1]) == 2  # a row and an open span (the first stage) each
    indicator_facts_rebuild()
    assert _kept() == kept


@pytest.mark.parametrize(
    ("code", "position", "rank"),
    [("needs_confirmed", None, 2), ("visit", 0, 1), ("aftercare", 30, 5)],
    ids=["later_default_stage", "own_stage_first", "own_stage_past_the_last"],
)
def test_an_arrival_straight_into_a_later_stage_counts_as_reaching_it_as_a_rebuild_does(
    org, code, position, rank
):
    """A pipeline's first stage may be one the conversion indicator counts (a stage coded
    needs_confirmed or later): the arrival's own rows say it reached that stage when it arrived.
    A stage whose code is none of the default pipeline's takes the rank of its position, from 1 up
    to the last rank. The arrival's rows join the stage for its rank, as `stage_ranks` reads it."""
    lead = factories.lead_make(province="31")
    first = Stage.objects.get(pk=lead.stage_id)
    if position is None:
        stage = Stage.objects.get(pipeline_id=lead.pipeline_id, code=code)
    else:
        stage = Stage.objects.create(
            version_id=first.version_id,
            pipeline_id=first.pipeline_id,
            code=code,
            name=code,
            position=position,
        )
    Lead.objects.filter(pk=lead.pk).update(stage=stage)
    StageMove.objects.filter(lead_id=lead.pk).update(to_stage=stage)
    IndicatorLead.objects.filter(lead_id=lead.pk).delete()
    IndicatorSpan.objects.filter(lead_id=lead.pk).delete()

    indicator_facts_refresh_many(lead_ids=[lead.pk], new=True)

    kept = _kept()
    assert [row[3] for row in kept[1]] == [rank]
    assert [row[4] for row in kept[0]] == [lead.created_at if rank >= 2 else None]
    indicator_facts_rebuild()
    assert _kept() == kept


def test_an_imports_funnel_rows_are_a_rebuilds(org, django_capture_on_commit_callbacks):
    """An import chunk adds its leads' entries to the funnel rollups, grouped by region, arrival and
    owner: what a replay of their moves gives, lead by lead."""
    in_force(org.admin, definition(rule("east", 1, regions=["east"])))
    phones = ["15805710001", "15805710002", "15805710003", "13926000001", "13926000002", "13800138000"]
    rows = [[f"客户{n}", phone, f"公司{n % 2}", "", "", "", ""] for n, phone in enumerate(phones)]
    job = run(job_of(org.carol, csv_bytes(rows)), org.carol, django_capture_on_commit_callbacks)

    assert job.created == len(phones)
    kept = funnel_tables()
    assert sum(row[5] for row in kept["days"] if row[0] == "d") == len(phones)  # entries, by region
    assert len({row[3] for row in kept["owner_days"]}) >= 2  # routed leads and waiting ones
    funnel_rollup_rebuild()
    assert funnel_tables() == kept


def test_the_derived_rows_hold_no_foreign_keys_yet_leave_with_their_lead(org):
    """The per-lead rows are a projection written only from the lead itself: a foreign key in the
    database would check every one — on PostgreSQL a deferred trigger per row, fired at commit,
    locking the lead — for nothing. A lead deleted through the ORM still takes its rows along."""
    from django.db import connection

    from salesloop.insights.models.indicators import IndicatorTouch

    with connection.cursor() as cursor:
        for model in (IndicatorLead, IndicatorSpan, IndicatorTouch):
            constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
            assert not [name for name, c in constraints.items() if c["foreign_key"]], model.__name__
    lead = factories.lead_make(province="31")
    other = factories.lead_make(province="31")
    assert IndicatorLead.objects.filter(lead_id=lead.pk).exists()
    assert IndicatorSpan.objects.filter(lead_id=lead.pk).exists()

    Lead.objects.filter(pk=lead.pk).delete()

    assert not IndicatorLead.objects.filter(lead_id=lead.pk).exists()
    assert not IndicatorSpan.objects.filter(lead_id=lead.pk).exists()
    assert IndicatorLead.objects.filter(lead_id=other.pk).exists()
