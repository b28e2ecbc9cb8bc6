"""The funnel rollups (SPEC C5): kept in step by every stage move, and rebuilt from the facts by
`salesloop insights_rebuild` with the same result (DESIGN.md rule 1)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from salesloop.insights.funnel_rollup import bucket_bounds, dwell_bucket, funnel_rollup_rebuild
from salesloop.insights.models import FunnelDay, FunnelOpen
from tests.insights.conftest import days, move

pytestmark = pytest.mark.django_db


def tables() -> dict[str, list[tuple]]:
    def rows(model, keys):
        names = [f.attname for f in model._meta.concrete_fields if f.attname != "id"]
        # a row whose counters are all zero is the same as no row
        return sorted(r for r in model.objects.values_list(*names) if any(r[keys:]))

    return {"days": rows(FunnelDay, 5), "open": rows(FunnelOpen, 3)}


def test_rebuilding_from_the_moves_gives_the_tables_the_moves_built_one_by_one(history, org):
    # given the rollups as the moves kept them
    incremental = tables()
    assert incremental["days"], "the moves must have filled the rollups"
    # when they are rebuilt from the facts by the command
    call_command("insights_rebuild", "--quiet")
    # then nothing differs
    assert tables() == incremental


def test_rebuild_repairs_a_damaged_rollup(history):
    incremental = tables()
    FunnelDay.objects.update(entries=999)
    FunnelOpen.objects.all().delete()
    assert funnel_rollup_rebuild() == 4
    assert tables() == incremental


def test_a_reopened_lead_counts_again_in_the_pile_up_and_rebuild_agrees(history, org):
    # given bob's lost lead, reopened in place and then moved forward
    days(1)
    b = move(history.b, "screening", org.bob, status="open")
    days(1)
    move(b, "needs_confirmed", org.bob)
    incremental = tables()
    # then rebuild agrees with what the moves added
    funnel_rollup_rebuild()
    assert tables() == incremental
    open_screening = FunnelOpen.objects.filter(stage_code="screening").values_list("open_leads", flat=True)
    assert sum(open_screening) == 1  # erin's; bob's left for needs_confirmed


@pytest.mark.parametrize(
    ("dwell_days", "bucket", "bounds"),
    [(0, 0, (0, 1)), (29.9, 29, (29, 30)), (30, 30, (30, 35)), (89.5, 41, (85, 90)), (90, 42, (90, 120)),
     (359, 50, (330, 360)), (1000, 51, (360, 720))],
)  # fmt: skip
def test_dwell_buckets_are_a_day_wide_under_a_month_and_coarser_after(dwell_days, bucket, bounds):
    assert dwell_bucket(int(dwell_days * 86_400)) == bucket
    assert bucket_bounds(bucket) == bounds


@pytest.mark.parametrize(
    ("start", "end"),
    [("2026-11-01", "2026-11-14"), ("2026-11-03", "2026-11-12"), ("2026-11-02", "2026-11-08"),
     ("2026-11-04", "2026-11-04"), ("2026-11-07", "2026-11-16"), ("2026-10-26", "2026-11-22")],
)  # fmt: skip
def test_week_and_day_rows_sum_to_the_same_numbers_as_replaying_the_facts(history, org, start, end):
    """The tables read whole weeks from week rows and the ends from day rows; any period must add
    up to what replaying every move gives for it."""
    from salesloop.crm.models import Lead
    from salesloop.insights.funnel import _from_rollup, funnel_numbers, funnel_query_parse
    from salesloop.insights.funnel_rollup import lead_facts, rollup_of_leads

    query = funnel_query_parse(user=org.director, params={"start": start, "end": end})
    from_tables = funnel_numbers(query)
    replayed = _from_rollup(
        rollup_of_leads(lead_facts(Lead.objects.all()), {}), query.start, query.end, by_region=False
    )
    codes = set(from_tables) | set(replayed)
    assert {c: from_tables[c].counters for c in codes if any(from_tables[c].counters)} == {
        c: replayed[c].counters for c in codes if any(replayed[c].counters)
    }


def test_leads_arriving_in_a_burst_enter_the_rollups_as_one_by_one(org):
    """Intake bursts append entry moves in bulk (intake.burst): the rollups see them too."""
    import json

    from salesloop.intake.burst import Delivery, deliveries_receive
    from salesloop.intake.services import source_create

    source = source_create(actor=None, kind="api", name="burst", secret="x" * 20)
    deliveries = [
        Delivery(
            source=source,
            body=json.dumps(
                {"id": str(n), "name": f"客户{n}", "phone": f"1370000010{n}"}, ensure_ascii=False
            ),
            external_id=str(n),
        )
        for n in range(3)
    ]
    deliveries_receive(deliveries)
    incremental = tables()
    assert sum(row[5] for row in incremental["days"] if row[1] == "d") == 3  # three entries
    funnel_rollup_rebuild()
    assert tables() == incremental


def test_leads_written_by_an_import_enter_the_rollups_too(org):
    """Imports write their leads and entry moves in bulk (intake.imports.engine)."""
    from salesloop.intake.imports import services
    from tests.intake.test_imports import csv_bytes, job_of

    services.import_source()
    rows = [[f"客户{i}", f"1381620{i:04d}", f"公司{i}有限公司", "", "", "", ""] for i in range(4)]
    job = services.import_start(actor=org.carol, job=job_of(org.carol, csv_bytes(rows)), enqueue=False)
    services.import_run(job_id=job.pk)
    incremental = tables()
    assert sum(row[5] for row in incremental["days"] if row[1] == "d") == 4  # four entries
    assert sum(row[3] for row in incremental["open"]) == 4  # four open leads in the first stage
    funnel_rollup_rebuild()
    assert tables() == incremental
