"""The funnel rollups (SPEC C5): kept in step by every stage move, and rebuilt from the facts by
`salesloop insights_rebuild` with the same result (DESIGN.md rule 1)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from salesloop.insights.funnel_rollup import (
    DAY_COUNTERS,
    bucket_bounds,
    dwell_bucket,
    funnel_rollup_rebuild,
)
from salesloop.insights.models import FunnelDay, FunnelOpen, FunnelOwnerDay, FunnelOwnerOpen
from tests.insights.conftest import days, move

pytestmark = pytest.mark.django_db

OPEN_COUNTERS = ("open_leads", "entered_epoch_sum")


def tables() -> dict[str, list[tuple]]:
    """Every rollup row as (keys…, counters…); a row whose counters are all zero is the same as no
    row. Day rows: (span, day, stage, region or owner, source, entries, …)."""

    def rows(model, keys, counters):
        return sorted(r for r in model.objects.values_list(*keys, *counters) if any(r[len(keys) :]))

    day_keys = ("span", "day", "stage_code")
    return {
        "days": rows(FunnelDay, (*day_keys, "region_id", "source"), DAY_COUNTERS),
        "open": rows(FunnelOpen, ("stage_code", "region_id", "source"), OPEN_COUNTERS),
        "owner_days": rows(FunnelOwnerDay, (*day_keys, "owner_id", "source"), DAY_COUNTERS),
        "owner_open": rows(FunnelOwnerOpen, ("stage_code", "owner_id", "source"), OPEN_COUNTERS),
    }


def replayed_numbers(leads, start, end):
    """Per stage code, the counters that replaying the leads' moves gives for the period."""
    from salesloop.insights.funnel_rollup import lead_facts, rollup_of_leads

    sums: dict[str, list[int]] = {}
    for (day, code, _region, _source), values in rollup_of_leads(lead_facts(leads), {}).days.items():
        if start <= day <= end:
            target = sums.setdefault(code, [0] * len(DAY_COUNTERS))
            for i, value in enumerate(values):
                target[i] += value
    return {code: values for code, values in sums.items() if any(values)}


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
    FunnelOwnerDay.objects.update(exits=7)
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
     ("2026-11-04", "2026-11-04"), ("2026-11-07", "2026-11-16"), ("2026-10-26", "2026-11-22"),
     # periods ending today (Saturday 14th), read through this week's row
     ("2026-11-09", "2026-11-14"), ("2026-11-03", "2026-11-14")],
)  # fmt: skip
def test_week_and_day_rows_sum_to_the_same_numbers_as_replaying_the_facts(history, org, start, end):
    """The tables read whole weeks from week rows and the ends from day rows; any period must add
    up to what replaying every move gives for it."""
    from salesloop.crm.models import Lead
    from salesloop.insights.funnel import funnel_numbers, funnel_query_parse

    query = funnel_query_parse(user=org.director, params={"start": start, "end": end})
    from_tables = {c: n.counters for c, n in funnel_numbers(query).items() if any(n.counters)}
    assert from_tables == replayed_numbers(Lead.objects.all(), query.start, query.end)
    # and each rep's funnel (the rollups by owner) is what replaying that rep's own leads gives
    for rep in (org.alice, org.bob, org.erin):
        query = funnel_query_parse(user=org.director, params={"rep": rep.pk, "start": start, "end": end})
        from_tables = {c: n.counters for c, n in funnel_numbers(query).items() if any(n.counters)}
        assert from_tables == replayed_numbers(Lead.objects.filter(owner=rep), query.start, query.end)


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
    assert sum(row[5] for row in incremental["days"] if row[0] == "d") == 3  # three entries
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
    assert sum(row[5] for row in incremental["days"] if row[0] == "d") == 4  # four entries
    assert sum(row[5] for row in incremental["owner_days"] if row[0] == "d") == 4
    assert sum(row[3] for row in incremental["open"]) == 4  # four open leads in the first stage
    funnel_rollup_rebuild()
    assert tables() == incremental


def _counted_once_under_their_owners(*, leads: int) -> None:
    """Every lead has an owner, its entry counts under that owner, nobody's rows were never
    written (not even emptied again: no row of owner 0 at all), and the tables equal a rebuild."""
    from salesloop.crm.models import Lead

    owners = sorted(Lead.objects.values_list("owner_id", flat=True))
    assert len(owners) == leads and None not in owners
    incremental = tables()
    entered = sorted(row[3] for row in incremental["owner_days"] if row[0] == "d" for _ in range(row[5]))
    assert entered == owners
    assert not FunnelOwnerDay.objects.filter(owner_id=0).exists()
    assert not FunnelOwnerOpen.objects.filter(owner_id=0).exists()
    funnel_rollup_rebuild()
    assert tables() == incremental


def test_an_import_routed_as_it_goes_counts_its_leads_under_their_owners_at_once(org):
    """An import routes a chunk's leads before announcing them (intake.imports.engine.chunk_announce):
    the owner pair counts each lead once, under the owner routing gave it — never under nobody
    first, then moved — and the tables still equal a rebuild."""
    from salesloop.intake.imports import services
    from tests.intake.test_imports import csv_bytes, job_of
    from tests.routing.conftest import definition, in_force, rule

    # given: a round-robin over 华东's reps in force
    in_force(org.admin, definition(rule("east", 1, regions=["east"])))
    services.import_source()
    rows = [[f"客户{i}", f"1381620{i:04d}", f"公司{i}有限公司", "", "", "", ""] for i in range(4)]

    # when: the file is imported
    job = services.import_start(actor=org.carol, job=job_of(org.carol, csv_bytes(rows)), enqueue=False)
    services.import_run(job_id=job.pk)

    # then: every lead has an owner, its entry counts under that owner, and nobody's rows were
    # never written (not even emptied again: no row of owner 0 at all)
    _counted_once_under_their_owners(leads=4)


def test_a_burst_of_webhooks_counts_its_new_leads_under_their_owners_at_once(org):
    """A burst routes its new leads before announcing them (intake.burst._route_and_announce), as
    an import does: each lead counts once, under the owner routing gave it — never under nobody
    first, then moved by `leads_reassigned` — and the tables still equal a rebuild."""
    import json

    from salesloop.intake.burst import Delivery, deliveries_receive
    from salesloop.intake.services import source_create
    from tests.routing.conftest import definition, in_force, rule

    # given: a round-robin over 华东's reps in force, and a signed API source
    in_force(org.admin, definition(rule("east", 1, regions=["east"])))
    source = source_create(actor=None, kind="api", name="burst", secret="x" * 20)
    items = [{"id": f"b{i}", "name": f"客户{i}", "phone": f"1381620{i:04d}"} for i in range(4)]

    # when: four deliveries arrive together
    deliveries_receive(
        [
            Delivery(source=source, body=json.dumps(item, ensure_ascii=False), external_id=item["id"])
            for item in items
        ]
    )

    # then: every lead has an owner, its entry counts under that owner, and nobody's rows were
    # never written
    _counted_once_under_their_owners(leads=4)


def _rep_funnel(org, rep):
    from salesloop.insights.funnel import funnel_heat, funnel_query_parse

    query = funnel_query_parse(
        user=org.director, params={"rep": rep.pk, "start": "2026-11-01", "end": "2026-11-30"}
    )
    return {row.code: row for row in funnel_heat(query=query).stages}


def test_a_hand_over_moves_the_leads_whole_history_to_the_new_owner(history, org):
    """A rep's funnel counts the leads they own now: reassigning alice's open lead `a` to bob moves
    its passes, exits and pile-up from her funnel to his, and the tables still equal a rebuild."""
    from salesloop.routing.services import lead_reassign

    before_alice, before_bob = _rep_funnel(org, org.alice), _rep_funnel(org, org.bob)
    assert before_alice["solution_demo"].piled_up == 1  # a
    assert before_alice["needs_confirmed"].passed == 2  # a entered 需求确认 twice
    # when a manager hands `a` to bob
    lead_reassign(actor=org.carol, lead=history.a, owner=org.bob, reason="alice 休假")
    alice, bob = _rep_funnel(org, org.alice), _rep_funnel(org, org.bob)
    # then its whole history left alice's funnel and joined bob's
    assert alice["solution_demo"].piled_up == 0
    assert alice["needs_confirmed"].passed == 0
    assert alice["screening"].backward == 0
    assert bob["solution_demo"].piled_up == 1
    assert bob["needs_confirmed"].passed == before_bob["needs_confirmed"].passed + 2
    assert bob["needs_confirmed"].backward == 1  # a's 需求确认 → 初筛
    # d stays alice's: her win is still hers
    assert alice["contract_signed"].passed == 1
    # the organisation's numbers (by region) did not move
    incremental = tables()
    funnel_rollup_rebuild()
    assert tables() == incremental


def test_an_owner_edit_and_a_return_to_the_pool_move_the_rows_too(history, org):
    """An edit of the lead's owner (crm.lead_update), to a rep and back to the pool (owner 0). Each
    leaves the tables equal to a rebuild."""
    from salesloop.crm.services import lead_update

    lead_update(actor=org.director, lead=history.c, owner=org.erin)  # same owner: nothing moves
    lead_update(actor=org.director, lead=history.c, owner=org.bob)
    assert _rep_funnel(org, org.bob)["screening"].piled_up == 1
    assert _rep_funnel(org, org.erin)["screening"].piled_up == 0
    incremental = tables()
    funnel_rollup_rebuild()
    assert tables() == incremental
    lead_update(actor=org.director, lead=history.c, owner=None)  # back to the pool
    assert _rep_funnel(org, org.bob)["screening"].piled_up == 0
    pooled = FunnelOwnerOpen.objects.filter(owner_id=0, stage_code="screening").values_list(
        "open_leads", flat=True
    )
    assert sum(pooled) == 1
    incremental = tables()
    funnel_rollup_rebuild()
    assert tables() == incremental


def test_a_write_of_more_rows_than_one_statement_holds_adds_every_row(org):
    """Rows are upserted many to a statement; a replay's thousands of rows span several."""
    import datetime as dt

    from salesloop.insights.funnel_rollup import UPSERT_PARAMETERS, Rollup

    rollup = Rollup(owners=False)
    first = dt.datetime(2024, 1, 1, 4, tzinfo=dt.UTC)
    days_n = UPSERT_PARAMETERS // (5 + len(DAY_COUNTERS)) * 2 + 7  # two statements and a bit
    for n in range(days_n):
        for _twice in range(2):  # two entries on each day: one row each, counted twice
            rollup.add_move(
                from_code=None, to_code="screening", from_status="", to_status="open", direction="enter",
                at=first + dt.timedelta(days=n), stay_started_at=None, lead_created_at=first,
                region_id=org.east.pk, source="web_form",
            )  # fmt: skip
    rollup.write()
    rollup.write()  # the second write adds onto the rows the first made
    days = FunnelDay.objects.filter(span="d")
    assert days.count() == days_n
    assert sorted(set(days.values_list("entries", flat=True))) == [4]
    assert sum(FunnelOpen.objects.values_list("open_leads", flat=True)) == 4 * days_n
