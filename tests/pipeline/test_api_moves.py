from __future__ import annotations

import datetime as dt

import pytest

from salesloop.core import clock, explanations
from salesloop.core.models import AuditEntry
from salesloop.crm.models import Lead
from salesloop.pipeline.models import StageMove
from tests.factories import lead_make, lead_ready_for

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


def test_a_move_is_an_appended_fact_with_its_explanation(org, api_as):
    clock.set_now(T0)
    lead = lead_ready_for(lead_make(owner=org.alice), "solution_demo")
    clock.set_now(T0 + dt.timedelta(days=3))
    response = api_as(org.alice).post(
        f"/api/v1/leads/{lead.pk}/moves", {"to_stage": "solution_demo", "note": "客户要看演示"}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["from_stage"], body["to_stage"]) == ("screening", "solution_demo")
    assert body["explanation"]["direction"] == "forward"
    assert body["explanation"]["skipped_stages"] == ["needs_confirmed"]
    assert body["explanation"]["dwell_seconds"] == 3 * 86400
    assert body["actor"]["username"] == "alice"
    explanations.validate(body["explanation"])  # stored explanations match their documented schema
    lead.refresh_from_db()
    assert lead.stage.code == "solution_demo"
    assert lead.stage_entered_at == T0 + dt.timedelta(days=3)
    assert AuditEntry.objects.filter(action="lead.move", target_id=str(lead.pk)).count() == 1


def test_moves_keep_their_record_and_explanation_as_json_text_on_postgresql(org, api_as):
    """A move's record (`filled`) and explanation are written with it and read whole: PostgreSQL
    keeps them as `json` (their text, checked) instead of parsing them into `jsonb`
    (pipeline/migrations/0007). They read back as the values stored, and the one look inside —
    the funnel's replay reading the explanation's direction in SQL — reads them alike."""
    from django.db import connection

    from salesloop.insights.funnel_rollup import moves_of

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_name = 'pipeline_stagemove' AND column_name IN ('filled', 'explanation')"
            )
            assert dict(cursor.fetchall()) == {"filled": "json", "explanation": "json"}
    clock.set_now(T0)
    lead = lead_ready_for(lead_make(owner=org.alice), "solution_demo")
    clock.set_now(T0 + dt.timedelta(days=1))
    response = api_as(org.alice).post(f"/api/v1/leads/{lead.pk}/moves", {"to_stage": "solution_demo"})
    assert response.status_code == 201, response.content
    moves = list(StageMove.objects.filter(lead=lead).order_by("at", "id"))
    assert len(moves) == 2
    for move in moves:
        assert isinstance(move.explanation, dict) and isinstance(move.filled, dict)
        explanations.validate(move.explanation)
    assert moves[-1].explanation == response.json()["explanation"]
    assert moves[-1].filled == response.json()["filled"]
    replayed = list(moves_of({"lead_id": lead.pk}))
    assert [fact.direction for fact in replayed] == [move.explanation["direction"] for move in moves]
    assert [fact.direction for fact in replayed] == ["enter", "forward"]


def test_backward_move_win_loss_and_reopen(org, api_as):
    lead = lead_ready_for(lead_make(owner=org.alice), "contract_signed")
    api = api_as(org.alice)
    assert api.post(f"/api/v1/leads/{lead.pk}/moves", {"to_stage": "quote_negotiation"}).status_code == 201
    back = api.post(
        f"/api/v1/leads/{lead.pk}/moves", {"to_stage": "solution_demo", "reason": "客户要求重新演示"}
    )
    assert back.json()["explanation"]["direction"] == "backward"
    won_too_early = api.post(f"/api/v1/leads/{lead.pk}/moves", {"status": "won"})
    assert won_too_early.status_code == 422
    assert won_too_early.json()["explanation"]["problems"][0]["code"] == "won_needs_last_stage"
    won = api.post(f"/api/v1/leads/{lead.pk}/moves", {"to_stage": "contract_signed", "status": "won"})
    assert won.status_code == 201
    lead.refresh_from_db()
    assert (lead.status, lead.stage.code, lead.closed_at is not None) == ("won", "contract_signed", True)
    again = api.post(f"/api/v1/leads/{lead.pk}/moves", {"to_stage": "screening"})
    assert again.status_code == 422
    assert again.json()["detail"][0]["type"] == "no_change" or "closed" in again.content.decode()
    reopened = api.post(
        f"/api/v1/leads/{lead.pk}/moves",
        {"status": "open", "to_stage": "quote_negotiation", "reason": "合同作废，重新谈判"},
    )
    assert reopened.status_code == 201
    lead.refresh_from_db()
    assert (lead.status, lead.closed_at) == ("open", None)


def test_losing_needs_a_reason_and_every_problem_is_listed(org, api_as):
    lead = lead_make(owner=org.alice)
    response = api_as(org.alice).post(f"/api/v1/leads/{lead.pk}/moves", {"status": "lost"})
    assert response.status_code == 422
    assert [d["loc"][-1] for d in response.json()["detail"]] == ["reason"]
    assert not StageMove.objects.filter(lead=lead, to_status="lost").exists()
    ok = api_as(org.alice).post(f"/api/v1/leads/{lead.pk}/moves", {"status": "lost", "reason": "选择竞品"})
    assert ok.status_code == 201
    assert Lead.objects.get(pk=lead.pk).lost_reason == "选择竞品"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"to_stage": "nope"}, "to_stage"),
        ({"status": "maybe"}, "status"),
        ({"to_stage": "screening"}, "to_stage"),
        ({"status": "lost", "reason": "x" * 201}, "reason"),
    ],
)
def test_bad_moves_are_422_naming_the_field(org, api_as, body, field):
    lead = lead_make(owner=org.alice)
    response = api_as(org.alice).post(f"/api/v1/leads/{lead.pk}/moves", body)
    assert response.status_code == 422, response.content
    assert field in [d["loc"][-1] for d in response.json()["detail"]]
    assert StageMove.objects.filter(lead=lead).count() == 1


def test_product_manager_cannot_move(org, api_as):
    lead = lead_make(owner=org.alice)
    assert (
        api_as(org.pm).post(f"/api/v1/leads/{lead.pk}/moves", {"to_stage": "needs_confirmed"}).status_code
        == 403
    )


def test_timeline_lists_moves_with_dwell_days(org, api_as):
    clock.set_now(T0)
    lead = lead_make(owner=org.alice)
    api = api_as(org.carol)
    clock.set_now(T0 + dt.timedelta(days=2))
    api.post(f"/api/v1/leads/{lead.pk}/moves", {"to_stage": "needs_confirmed"})
    clock.set_now(T0 + dt.timedelta(days=7))
    api.post(f"/api/v1/leads/{lead.pk}/moves", {"to_stage": "screening", "reason": "需求未确认"})
    clock.set_now(T0 + dt.timedelta(days=8))
    body = api.get(f"/api/v1/leads/{lead.pk}/timeline").json()
    assert [(m["from_stage"], m["to_stage"]) for m in body["items"]] == [
        (None, "screening"),
        ("screening", "needs_confirmed"),
        ("needs_confirmed", "screening"),
    ]
    assert body["dwell_days"] == {"screening": 3.0, "needs_confirmed": 5.0}


def test_projection_rebuilds_from_moves_alone(org, api_as):
    from salesloop.pipeline.services import lead_projection_rebuild

    lead = lead_make(owner=org.alice)
    api = api_as(org.alice)
    lead_ready_for(lead, "quote_negotiation")
    assert api.post(f"/api/v1/leads/{lead.pk}/moves", {"to_stage": "quote_negotiation"}).status_code == 201
    api.post(f"/api/v1/leads/{lead.pk}/moves", {"status": "lost", "reason": "项目取消"})
    expected = (
        Lead.objects.filter(pk=lead.pk)
        .values("stage", "status", "stage_entered_at", "closed_at", "lost_reason")
        .get()
    )
    Lead.objects.filter(pk=lead.pk).update(stage=lead.stage, status="open", closed_at=None, lost_reason="")
    lead_projection_rebuild(lead_id=lead.pk)
    assert (
        Lead.objects.filter(pk=lead.pk)
        .values("stage", "status", "stage_entered_at", "closed_at", "lost_reason")
        .get()
        == expected
    )
