"""Stage gates (SPEC C2.2, C2.3): a forward move needs what the stages it enters require, through
every path — the service, the page, the API, the bulk action, the admin — with no bypass."""

from __future__ import annotations

import csv
import io
import json
import re
from decimal import Decimal
from html import unescape
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from salesloop.core import clock
from salesloop.crm.models import Lead
from salesloop.pipeline.models import Stage, StageMove
from salesloop.pipeline.services import StageMoveRefused, lead_move_stage
from tests.factories import attachment_make, contact_make, customer_make, lead_make, lead_ready_for

pytestmark = pytest.mark.django_db


def stage(code: str) -> Stage:
    return Stage.objects.get(pipeline__is_default=True, code=code)


def bare_lead(owner):
    """A lead with nothing the gates look for: no phone, no industry, no amount, no attachments."""
    customer = customer_make(industry="")
    contact = contact_make(customer=customer, phone="")
    return lead_make(owner=owner, customer=customer, contact=contact, expected_amount=Decimal("0"))


def refused(**kwargs) -> list[dict[str, str]]:
    with pytest.raises(StageMoveRefused) as info:
        lead_move_stage(**kwargs)
    return info.value.explanation["problems"]


# --- the service ------------------------------------------------------------------------------


def test_a_forward_move_is_refused_with_every_missing_item_of_every_stage_it_enters(org):
    lead = bare_lead(org.alice)
    problems = refused(actor=org.alice, lead=lead, to_stage=stage("quote_negotiation"))
    # skipping forward must meet the skipped stages' requirements too
    assert [(p["stage"], p["code"], p["field"]) for p in problems] == [
        ("needs_confirmed", "missing_field", "contact.phone"),
        ("needs_confirmed", "missing_field", "customer.industry"),
        ("solution_demo", "missing_attachment", "attachment.pain_points"),
        ("solution_demo", "missing_attachment", "attachment.deck_link"),
        ("quote_negotiation", "missing_field", "expected_amount"),
        ("quote_negotiation", "missing_attachment", "attachment.proposal"),
    ]
    labels = {p["field"]: (p["label_zh"], p["label_en"]) for p in problems}
    assert labels["attachment.pain_points"] == ("痛点清单", "Pain-point list")
    assert labels["contact.phone"] == ("联系人电话", "Contact phone")
    assert "Pain-point list" in next(p["message"] for p in problems if p["field"] == "attachment.pain_points")
    lead.refresh_from_db()
    assert lead.stage.code == "screening"
    assert StageMove.objects.filter(lead=lead).count() == 1


def test_what_is_missing_shrinks_as_it_is_filled_and_the_move_records_what_was_filled(org):
    lead = lead_make(owner=org.alice)  # phone, industry and amount filled by the factory
    attachment_make(lead, "pain_points", title="痛点清单 v1")
    problems = refused(actor=org.alice, lead=lead, to_stage=stage("solution_demo"))
    assert [p["field"] for p in problems] == ["attachment.deck_link"]
    attachment_make(lead, "deck_link", title="定制方案", url="https://deck.example.com/x")
    move = lead_move_stage(actor=org.alice, lead=lead, to_stage=stage("solution_demo"))
    items = {item["key"]: item for item in move.filled["items"]}
    assert set(items) == {
        "contact.phone",
        "customer.industry",
        "attachment.pain_points",
        "attachment.deck_link",
    }
    assert items["attachment.deck_link"]["value"][0]["url"] == "https://deck.example.com/x"
    assert items["customer.industry"]["value"] == "工业设备"
    assert "****" in items["contact.phone"]["value"]  # the fact it was filled, not the number
    assert move.explanation["skipped_stages"] == ["needs_confirmed"]


def test_a_withdrawn_attachment_does_not_count(org):
    lead = lead_ready_for(lead_make(owner=org.alice), "solution_demo")
    lead.attachments.filter(kind="deck_link").update(removed_at=clock.now())
    problems = refused(actor=org.alice, lead=lead, to_stage=stage("solution_demo"))
    assert [p["field"] for p in problems] == ["attachment.deck_link"]


def test_a_backward_move_needs_a_reason_and_no_requirements(org):
    lead = lead_ready_for(lead_make(owner=org.alice), "solution_demo")
    lead_move_stage(actor=org.alice, lead=lead, to_stage=stage("solution_demo"))
    lead.attachments.all().update(removed_at=clock.now())  # requirements no longer met: irrelevant
    problems = refused(actor=org.alice, lead=lead, to_stage=stage("needs_confirmed"))
    assert [p["code"] for p in problems] == ["backward_needs_reason"]
    move = lead_move_stage(actor=org.alice, lead=lead, to_stage=stage("screening"), reason="联系人离职")
    assert (move.explanation["direction"], move.reason, move.filled) == ("backward", "联系人离职", {})


def test_closing_as_lost_in_place_needs_no_requirements_but_winning_needs_the_contract(org):
    lead = lead_ready_for(lead_make(owner=org.alice), "quote_negotiation")
    lead_move_stage(actor=org.alice, lead=lead, to_stage=stage("quote_negotiation"))
    problems = refused(actor=org.alice, lead=lead, to_stage=stage("contract_signed"), status="won")
    assert [p["field"] for p in problems] == ["attachment.contract"]
    attachment_make(lead, "contract", title="合同扫描件")
    assert lead_move_stage(actor=org.alice, lead=lead, to_stage=stage("contract_signed"), status="won")


def test_an_admin_gets_no_bypass(org):
    lead = bare_lead(org.alice)
    problems = refused(actor=org.admin, lead=lead, to_stage=stage("needs_confirmed"))
    assert {p["field"] for p in problems} == {"contact.phone", "customer.industry"}


# --- the API ----------------------------------------------------------------------------------


def test_the_api_refuses_with_the_missing_list(org, api_as):
    lead = bare_lead(org.alice)
    response = api_as(org.director).post(f"/api/v1/leads/{lead.pk}/moves", {"to_stage": "solution_demo"})
    assert response.status_code == 422
    body = response.json()
    assert [d["loc"][-1] for d in body["detail"]] == [
        "contact.phone",
        "customer.industry",
        "attachment.pain_points",
        "attachment.deck_link",
    ]
    assert {d["type"] for d in body["detail"]} == {"missing_field", "missing_attachment"}
    assert body["explanation"]["kind"] == "stage_move_refused"


def test_the_timeline_api_returns_what_was_filled(org, api_as):
    lead = lead_ready_for(lead_make(owner=org.alice), "solution_demo")
    api = api_as(org.alice)
    assert api.post(f"/api/v1/leads/{lead.pk}/moves", {"to_stage": "solution_demo"}).status_code == 201
    items = api.get(f"/api/v1/leads/{lead.pk}/timeline").json()["items"]
    assert items[0]["filled"] == {}
    assert {i["key"] for i in items[1]["filled"]["items"]} >= {
        "attachment.pain_points",
        "attachment.deck_link",
    }


def test_patching_a_lead_cannot_change_its_stage(org, api_as):
    lead = lead_make(owner=org.alice)
    response = api_as(org.admin).patch(
        f"/api/v1/leads/{lead.pk}", {"stage": "contract_signed", "status": "won", "title": "新标题"}
    )
    assert response.status_code in (200, 422)
    lead.refresh_from_db()
    assert (lead.stage.code, lead.status) == ("screening", "open")


# --- bulk -------------------------------------------------------------------------------------


def test_bulk_move_moves_what_passes_and_says_why_the_rest_did_not(org, api_as):
    ready = lead_ready_for(lead_make(owner=org.alice), "solution_demo")
    not_ready = bare_lead(org.alice)
    bobs = lead_ready_for(lead_make(owner=org.bob), "solution_demo")
    response = api_as(org.alice).post(
        "/api/v1/leads/moves",
        {"lead_ids": [ready.pk, not_ready.pk, bobs.pk, 99999999], "to_stage": "solution_demo"},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["moved"], body["refused"]) == (1, 3)
    results = {r["lead_id"]: r for r in body["results"]}
    assert results[ready.pk]["moved"] and results[ready.pk]["move"]["to_stage"] == "solution_demo"
    assert [p["field"] for p in results[not_ready.pk]["problems"]] == [
        "contact.phone",
        "customer.industry",
        "attachment.pain_points",
        "attachment.deck_link",
    ]
    assert results[not_ready.pk]["problems"][2]["label_zh"] == "痛点清单"
    # a rep cannot reach another rep's lead through bulk: the same answer as a lead that doesn't exist
    assert results[bobs.pk]["problems"] == results[99999999]["problems"]
    assert results[bobs.pk]["problems"][0]["code"] == "not_found"
    assert Lead.objects.get(pk=bobs.pk).stage.code == "screening"
    assert Lead.objects.get(pk=ready.pk).stage.code == "solution_demo"


def test_bulk_move_validates_its_input(org, api_as):
    api = api_as(org.alice)
    assert api.post("/api/v1/leads/moves", {"lead_ids": [], "to_stage": "x"}).status_code == 422
    too_many = api.post("/api/v1/leads/moves", {"lead_ids": list(range(1, 202)), "to_stage": "x"})
    assert too_many.status_code == 422
    lead = lead_make(owner=org.alice)
    unknown = api.post("/api/v1/leads/moves", {"lead_ids": [lead.pk], "to_stage": "teleported"}).json()
    assert unknown["results"][0]["problems"][0]["code"] == "wrong_pipeline"


def test_bulk_move_from_the_lead_list_page(client, org):
    ready = lead_ready_for(lead_make(owner=org.alice), "needs_confirmed")
    not_ready = bare_lead(org.alice)
    client.force_login(org.alice)
    page = unescape(client.get("/leads/").content.decode())
    assert 'id="bulk-move"' in page and f'value="{ready.pk}"' in page
    response = client.post(
        "/pipelines/moves", {"lead_ids": [ready.pk, not_ready.pk], "to_stage": "needs_confirmed"}
    )
    assert response.status_code == 200
    body = unescape(response.content.decode())
    assert "联系人电话" in body and "客户行业" in body
    assert Lead.objects.get(pk=ready.pk).stage.code == "needs_confirmed"
    assert Lead.objects.get(pk=not_ready.pk).stage.code == "screening"


def test_a_product_manager_cannot_bulk_move(client, org):
    lead = lead_make(owner=org.alice)
    client.force_login(org.pm)
    assert (
        client.post("/pipelines/moves", {"lead_ids": [lead.pk], "to_stage": "needs_confirmed"}).status_code
        == 403
    )


# --- the lead page --------------------------------------------------------------------------------


def test_the_page_refuses_a_move_listing_the_missing_items(client, org):
    lead = bare_lead(org.alice)
    client.force_login(org.alice)
    response = client.post(
        f"/leads/{lead.pk}/move/",
        {"stage": "solution_demo"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="move-form",
    )
    assert response.status_code == 422
    body = unescape(response.content.decode())
    for label in ["联系人电话", "客户行业", "痛点清单", "定制方案链接"]:
        assert label in body
    assert Lead.objects.get(pk=lead.pk).stage.code == "screening"


def test_the_page_shows_what_the_next_stage_needs_ticked_or_missing(client, org):
    lead = lead_make(owner=org.alice)
    lead_move_stage(actor=org.alice, lead=lead, to_stage=stage("needs_confirmed"))
    attachment_make(lead, "pain_points")
    client.force_login(org.alice)
    body = unescape(client.get(f"/leads/{lead.pk}/").content.decode())
    panel = body[body.index('id="next-needs"') :]
    panel = panel[: panel.index("</div>")]
    assert "方案演示" in panel
    assert re.search(r"is-met.*?痛点清单", panel, re.S)
    assert re.search(r"is-missing.*?定制方案链接", panel, re.S)


def test_a_backward_move_on_the_page_needs_a_reason_and_the_timeline_shows_what_was_filled(client, org):
    lead = lead_ready_for(lead_make(owner=org.alice), "solution_demo")
    client.force_login(org.alice)
    assert client.post(f"/leads/{lead.pk}/move/", {"stage": "solution_demo"}).status_code == 302
    body = unescape(client.get(f"/leads/{lead.pk}/").content.decode())
    assert "timeline__filled" in body and "痛点清单" in body
    response = client.post(f"/leads/{lead.pk}/move/", {"stage": "screening"})
    assert response.status_code == 422
    assert Lead.objects.get(pk=lead.pk).stage.code == "solution_demo"
    response = client.post(f"/leads/{lead.pk}/move/", {"stage": "screening", "reason": "需求变了"})
    assert response.status_code == 302
    assert Lead.objects.get(pk=lead.pk).stage.code == "screening"


# --- the admin, imports, and no other writer --------------------------------------------------------


def test_the_admin_cannot_change_stage_or_status(client, org):
    lead = lead_make(owner=org.alice)
    org.admin.is_staff = org.admin.is_superuser = True
    org.admin.save()
    client.force_login(org.admin)
    url = f"/admin/crm/lead/{lead.pk}/change/"
    form = unescape(client.get(url).content.decode())
    assert 'name="stage"' not in form and 'name="status"' not in form
    client.post(
        url,
        {
            "title": lead.title,
            "owner": org.alice.pk,
            "campaign": "",
            "expected_amount": "100000",
            "stage": stage("contract_signed").pk,
            "status": "won",
            "moves-TOTAL_FORMS": "0",
            "moves-INITIAL_FORMS": "0",
        },
    )
    lead.refresh_from_db()
    assert (lead.stage.code, lead.status) == ("screening", "open")


def test_pipeline_admin_is_read_only(client, org):
    org.admin.is_staff = org.admin.is_superuser = True
    org.admin.save()
    client.force_login(org.admin)
    for model in ["pipeline", "pipelineversion", "stage"]:
        assert client.get(f"/admin/pipeline/{model}/add/").status_code == 403
    pk = stage("solution_demo").pk
    client.post(f"/admin/pipeline/stage/{pk}/change/", {"requirements": "[]"})
    assert Stage.objects.get(pk=pk).requirements != []


def test_imports_put_new_leads_in_the_first_stage_whatever_the_old_system_said(
    org, django_capture_on_commit_callbacks
):
    from salesloop.intake.imports import services

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["姓名", "手机号", "公司名称", "阶段"])
    writer.writerow(["王小明", "15805710001", "杭州星河科技有限公司", "合同签署"])
    upload = SimpleUploadedFile("leads.csv", out.getvalue().encode(), content_type="text/csv")
    job = services.import_job_create(actor=org.carol, upload=upload, name="leads.csv", mapping=None)
    with django_capture_on_commit_callbacks(execute=True):
        services.import_start(actor=org.carol, job=job)
    lead = Lead.objects.get(source="import")
    assert lead.stage == Stage.objects.filter(pipeline__is_default=True).order_by("position").first()
    assert lead.stage.requirements == []
    assert list(lead.moves.values_list("to_stage__code", flat=True)) == ["screening"]


SRC = Path(__file__).resolve().parents[2] / "src" / "salesloop"
# Who may write Lead.stage: the move service (and the projection rebuilt from moves), and the
# creation paths, which put a new lead in the first stage; the demo generator writes history rows
# as data generation (docs/pipelines.md).
ALLOWED_WRITERS = {"pipeline/services.py", "crm/services.py", "intake/imports/engine.py", "demo/rows.py"}
WRITE_PATTERNS = [
    re.compile(r"\.stage(_id)?\s*=(?!=)"),  # lead.stage = …
    re.compile(r"update\([^)]*\bstage(_id)?\s*="),  # Lead.objects.update(stage=…)
    re.compile(r"update_fields=[^\]]*[\"']stage(_id)?[\"']"),  # save(update_fields=["stage"])
    re.compile(r"bulk_update\([^)]*[\"']stage(_id)?[\"']"),
]
# Raw SQL or bulk copies naming the column write it when the module inserts or updates rows.
RAW_COLUMN = re.compile(r"[\"']stage_id[\"']|\bstage_id\b\s*=\s*%s")
RAW_WRITE = re.compile(
    r"INSERT INTO|UPDATE \S+ SET|COPY |executemany"
    r"|table(_spec)?\(\s*Lead\b|Lead\.objects\.bulk_(create|update)",
    re.I,
)


def test_nothing_else_writes_a_leads_stage():
    writers = set()
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC).as_posix()
        if "/migrations/" in relative:
            continue
        text = path.read_text(encoding="utf-8")
        if RAW_COLUMN.search(text) and RAW_WRITE.search(text):
            writers.add(relative)
        for line in text.splitlines():
            if any(pattern.search(line) for pattern in WRITE_PATTERNS):
                writers.add(relative)
    assert writers <= ALLOWED_WRITERS, writers - ALLOWED_WRITERS
    # the patterns do find the real writers: the move service, and the import's bulk insert
    assert {"pipeline/services.py", "intake/imports/engine.py"} <= writers


def test_the_first_stage_of_every_pipeline_has_no_requirements():
    for first in Stage.objects.filter(position=1):
        assert first.requirements == [], first
    assert json.loads(json.dumps(stage("solution_demo").requirements))[0]["kind"] == "pain_points"
