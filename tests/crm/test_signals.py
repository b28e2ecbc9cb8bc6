"""The "lead facts changed" signals (salesloop.crm.signals): what a receiver is handed, and that it
runs inside the writer's transaction. That insights' receivers keep the funnel rollups and the
indicator rows in step through them is shown by tests/insights (test_funnel_rollup: the rollups the
moves kept equal a rebuild, bursts and imports included; test_indicators_compute and
test_indicators_bulk_paths: the indicator rows kept by moves, touches, reassignments, bursts and
imports equal a rebuild)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.dispatch import Signal

from salesloop.core import clock
from salesloop.crm import signals
from salesloop.insights.models import FunnelDay, FunnelOpen
from salesloop.pipeline.models import Stage, StageMove
from salesloop.pipeline.services import lead_move_stage
from tests.factories import lead_make, lead_ready_for

pytestmark = pytest.mark.django_db


@contextmanager
def receiving(signal: Signal, receiver: Any) -> Iterator[None]:
    signal.connect(receiver, dispatch_uid="tests.crm.test_signals")
    try:
        yield
    finally:
        signal.disconnect(dispatch_uid="tests.crm.test_signals")


def funnel_rows() -> list[tuple]:
    return sorted(FunnelDay.objects.values_list()) + sorted(FunnelOpen.objects.values_list())


def needs_confirmed(lead: Any) -> Stage:
    return Stage.objects.get(pipeline_id=lead.pipeline_id, code="needs_confirmed")


def test_a_stage_move_hands_receivers_the_lead_as_it_stood_before_the_move(org):
    # given alice's lead, three days in screening
    clock.set_now(dt.datetime(2026, 11, 2, 1, 0, tzinfo=dt.UTC))
    lead = lead_make(owner=org.alice)
    entered = lead.stage_entered_at
    clock.advance(dt.timedelta(days=3))
    lead = lead_ready_for(lead, "needs_confirmed")
    seen: list[dict[str, Any]] = []

    def record(*, sender: Any, lead: Any, move: Any, from_code: Any, direction: Any, **_: Any) -> None:
        seen.append(
            {"sender": sender, "stage": lead.stage.code, "entered": lead.stage_entered_at, "move": move.pk}
            | {"from_code": from_code, "direction": direction}
        )

    # when she moves it forward
    with receiving(signals.lead_stage_moved, record):
        move = lead_move_stage(actor=org.alice, lead=lead, to_stage=needs_confirmed(lead))
    # then the receiver saw the stay the move ends, and the move itself
    assert seen == [
        {
            "sender": StageMove,
            "stage": "screening",
            "entered": entered,
            "move": move.pk,
            "from_code": "screening",
            "direction": "forward",
        }
    ]


def test_a_failing_receiver_rolls_the_fact_back_with_what_insights_derived(org):
    # given a lead in screening and the funnel rollups as its entry left them
    lead = lead_ready_for(lead_make(owner=org.alice), "needs_confirmed")
    moves, rollups = StageMove.objects.count(), funnel_rows()

    def refuse(**_: Any) -> None:
        raise RuntimeError("a receiver failed")

    # when a receiver after insights' own fails during a move
    with receiving(signals.lead_stage_moved, refuse), pytest.raises(RuntimeError, match="a receiver failed"):
        lead_move_stage(actor=org.alice, lead=lead, to_stage=needs_confirmed(lead))
    # then the error reached the writer (send, not send_robust) and nothing of the move is left:
    # neither the fact, nor the lead's new stage, nor the rollups insights had already added
    lead.refresh_from_db()
    assert lead.stage.code == "screening"
    assert StageMove.objects.count() == moves
    assert funnel_rows() == rollups
