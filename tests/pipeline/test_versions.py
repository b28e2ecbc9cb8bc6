"""Pipelines as versioned data (SPEC C10.2): drafts, publishing without a restart, leads keeping the
version they were moved under, the editor's validation (API and page) and who may edit."""

from __future__ import annotations

import re
from html import unescape

import pytest

from salesloop.core.models import AuditEntry
from salesloop.crm.services import lead_create
from salesloop.pipeline import editor
from salesloop.pipeline.models import Pipeline, PipelineVersion, Stage, VersionStatus
from salesloop.pipeline.selectors import pipeline_default
from salesloop.pipeline.services import StageMoveRefused, lead_move_stage
from salesloop.workspace.models import CustomField
from tests.factories import attachment_make, contact_make, customer_make, lead_make, lead_ready_for

pytestmark = pytest.mark.django_db


def live(code: str) -> Stage:
    return Stage.objects.get(pipeline__is_default=True, code=code)


def document(pipeline: Pipeline) -> list[dict]:
    return editor.version_document(editor.pipeline_version_live(pipeline))["stages"]


def publish_with(actor, stages: list[dict], name: str | None = None) -> PipelineVersion:
    pipeline = pipeline_default()
    draft = editor.pipeline_draft_open(actor=actor, pipeline=pipeline)
    editor.pipeline_draft_save(actor=actor, draft=draft, name=name or draft.name, stages=stages)
    return editor.pipeline_publish(actor=actor, draft=draft)


def test_the_default_pipeline_starts_at_version_1_in_force(org):
    version = editor.pipeline_version_live(pipeline_default())
    assert (version.number, version.status) == (1, VersionStatus.LIVE)
    assert [s["code"] for s in document(pipeline_default())] == [
        "screening",
        "needs_confirmed",
        "solution_demo",
        "quote_negotiation",
        "contract_signed",
    ]


def test_publishing_takes_effect_at_once_and_leads_keep_their_version(org):
    old_lead = lead_make(owner=org.alice)
    lead_move_stage(actor=org.alice, lead=old_lead, to_stage=live("needs_confirmed"))
    v1_stage = live("needs_confirmed")
    # given a new version where 方案演示 needs only the pain-point list, and a new label
    stages = document(pipeline_default())
    stages[2]["requirements"] = stages[2]["requirements"][:1]
    stages[2]["name"] = "方案讲解"
    v2 = publish_with(org.director, stages)
    assert v2.number == 2
    # the lead stays on the stage row of version 1 until it moves
    old_lead.refresh_from_db()
    assert old_lead.stage_id == v1_stage.pk and old_lead.stage.version.number == 1
    # the next move uses the version in force, in this same process (no restart, no cache)
    attachment_make(old_lead, "pain_points")
    move = lead_move_stage(actor=org.alice, lead=old_lead, to_stage=live("solution_demo"))
    assert move.to_stage.version_id == v2.pk and move.to_stage.name == "方案讲解"
    assert move.from_stage_id == v1_stage.pk
    assert move.explanation["direction"] == "forward"
    # new leads enter the first stage of version 2
    new_lead = lead_make(owner=org.alice)
    assert new_lead.stage.version_id == v2.pk and new_lead.stage.code == "screening"
    # the version in force is the only one whose stages `Stage.pipeline` points at
    assert Stage.objects.filter(pipeline=pipeline_default()).count() == 5
    assert set(Stage.objects.filter(pipeline=pipeline_default()).values_list("version_id", flat=True)) == {
        v2.pk
    }


def test_a_stage_gone_from_the_new_version_is_said_and_every_requirement_applies(client, org):
    lead = lead_ready_for(lead_make(owner=org.alice), "quote_negotiation")
    lead_move_stage(actor=org.alice, lead=lead, to_stage=live("quote_negotiation"))
    stages = [s for s in document(pipeline_default()) if s["code"] != "quote_negotiation"]
    publish_with(org.admin, stages)
    client.force_login(org.alice)
    body = unescape(client.get(f"/leads/{lead.pk}/").content.decode())
    assert "不在当前流程中" in body or "no longer in the pipeline" in body
    assert re.findall(r'class="stagebar__step is-(\w+)"', body) == ["todo"] * 4
    lead.attachments.filter(kind="pain_points").delete()
    with pytest.raises(StageMoveRefused) as info:
        lead_move_stage(actor=org.alice, lead=lead, to_stage=live("solution_demo"))
    assert [p["field"] for p in info.value.explanation["problems"]] == ["attachment.pain_points"]
    # the timeline of moves across versions still reads (codes from each move's own stage rows)
    assert client.get(f"/api/v1/leads/{lead.pk}/timeline").status_code == 200


def test_published_versions_never_change(org):
    draft = editor.pipeline_draft_open(actor=org.admin, pipeline=pipeline_default())
    published = editor.pipeline_publish(actor=org.admin, draft=draft)
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        editor.pipeline_draft_save(
            actor=org.admin, draft=published, name="x", stages=document(pipeline_default())
        )
    with pytest.raises(ValidationError):
        editor.pipeline_publish(actor=org.admin, draft=published)
    retired = PipelineVersion.objects.get(number=1)
    assert retired.status == VersionStatus.RETIRED and retired.stages.count() == 5


def test_every_change_is_audited_with_before_and_after(org):
    stages = document(pipeline_default())
    stages[1]["name_en"] = "Needs qualified"
    publish_with(org.director, stages, name="标准流程 2")
    entries = {e.action: e for e in AuditEntry.objects.filter(action__startswith="pipeline.")}
    assert set(entries) == {"pipeline.draft_open", "pipeline.draft_save", "pipeline.publish"}
    publish = entries["pipeline.publish"]
    assert publish.before["stages"][1]["name_en"] == "Needs confirmed"
    assert publish.after["stages"][1]["name_en"] == "Needs qualified"
    assert publish.after["version"] == 2 and publish.actor == org.director
    assert Pipeline.objects.get(is_default=True).name == "标准流程 2"


def test_copy_then_publish_gives_a_pipeline_a_source_can_use(org):
    copy = editor.pipeline_copy(
        actor=org.admin, source=pipeline_default(), code="key_accounts", name="大客户流程"
    )
    assert not Stage.objects.filter(pipeline=copy).exists()  # a draft only, until published
    draft = copy.versions.get()
    stages = editor.version_document(draft)["stages"]
    stages.insert(3, {"code": "poc", "name": "试点验证", "name_en": "Pilot", "requirements": []})
    editor.pipeline_draft_save(actor=org.admin, draft=draft, name="大客户流程", stages=stages)
    editor.pipeline_publish(actor=org.admin, draft=draft)
    customer = customer_make()
    lead = lead_create(actor=None, customer=customer, contact=contact_make(customer=customer), pipeline=copy)
    assert (lead.pipeline_id, lead.stage.code, lead.stage.version.pipeline_id) == (
        copy.pk,
        "screening",
        copy.pk,
    )
    assert [s.code for s in Stage.objects.filter(pipeline=copy).order_by("position")][3] == "poc"


# --- the editor's API -------------------------------------------------------------------------------


def put(client, user, path, body):
    import json

    from salesloop.accounts.services import token_create

    _, token = token_create(actor=None, user=user)
    return client.put(
        path, json.dumps(body), content_type="application/json", headers={"Authorization": f"Bearer {token}"}
    )


def test_the_api_edits_and_publishes(client, org, api_as):
    api = api_as(org.director)
    pid = pipeline_default().pk
    assert api.post(f"/api/v1/pipelines/{pid}/draft").status_code == 201
    stages = api.get(f"/api/v1/pipelines/{pid}").json()["draft"]["stages"]
    stages[0], stages[1] = stages[1], stages[0]  # reorder: invalid, 需求确认 has requirements
    response = put(
        client, org.director, f"/api/v1/pipelines/{pid}/draft", {"name": "新流程", "stages": stages}
    )
    assert response.status_code == 422
    assert [d["loc"][-1] for d in response.json()["detail"]] == ["stages[0].requirements"]
    stages[0], stages[1] = stages[1], stages[0]
    stages[4]["name"] = "签约"
    response = put(
        client, org.director, f"/api/v1/pipelines/{pid}/draft", {"name": "新流程", "stages": stages}
    )
    assert response.status_code == 200, response.content
    published = api.post(f"/api/v1/pipelines/{pid}/publish")
    assert published.status_code == 200 and published.json()["status"] == "live"
    body = api.get(f"/api/v1/pipelines/{pid}").json()
    assert (body["name"], body["live"]["number"], body["draft"], body["versions"]) == (
        "新流程",
        2,
        None,
        [1, 2],
    )
    assert live("contract_signed").name == "签约"


def test_editor_errors_name_each_item_by_its_path(client, org, api_as):
    CustomField.objects.create(entity="lead", name="budget_owner", label_zh="预算负责人", field_type="text")
    CustomField.objects.create(
        entity="customer", name="old", label_zh="旧字段", field_type="text", archived=True
    )
    pid = pipeline_default().pk
    api_as(org.admin).post(f"/api/v1/pipelines/{pid}/draft")
    stages = api_as(org.admin).get(f"/api/v1/pipelines/{pid}").json()["draft"]["stages"]
    stages[2]["requirements"] = [
        {"type": "field", "field": "custom.budget_owner"},  # fine
        {"type": "field", "field": "customer.custom.old"},  # archived
        {"type": "field", "field": "nope"},
        {"type": "attachment", "kind": "Bad Kind!", "label_zh": "坏"},
        {"type": "attachment", "kind": "deck_link"},  # no label
        {"type": "video"},
        {"type": "field", "field": "expected_amount", "extra": 1},
    ]
    stages[3]["code"] = stages[1]["code"]
    response = put(client, org.admin, f"/api/v1/pipelines/{pid}/draft", {"name": "x", "stages": stages})
    assert response.status_code == 422
    locs = {d["loc"][-1]: d["msg"] for d in response.json()["detail"]}
    assert set(locs) == {
        "stages[2].requirements[1].field",
        "stages[2].requirements[2].field",
        "stages[2].requirements[3].kind",
        "stages[2].requirements[4].label_zh",
        "stages[2].requirements[5].type",
        "stages[2].requirements[6].extra",
        "stages[3].code",
    }
    assert "archived" in locs["stages[2].requirements[1].field"]
    # a lead custom field can be required, and the gate reads it
    stages = api_as(org.admin).get(f"/api/v1/pipelines/{pid}").json()["draft"]["stages"]
    stages[1]["requirements"].append({"type": "field", "field": "custom.budget_owner"})
    assert (
        put(client, org.admin, f"/api/v1/pipelines/{pid}/draft", {"name": "x", "stages": stages}).status_code
        == 200
    )
    api_as(org.admin).post(f"/api/v1/pipelines/{pid}/publish")
    lead = lead_make(owner=org.alice)
    with pytest.raises(StageMoveRefused) as info:
        lead_move_stage(actor=org.alice, lead=lead, to_stage=live("needs_confirmed"))
    assert [(p["field"], p["label_zh"]) for p in info.value.explanation["problems"]] == [
        ("custom.budget_owner", "预算负责人")
    ]


@pytest.mark.parametrize("persona", ["alice", "carol", "pm"])
def test_only_admins_and_directors_edit_pipelines(client, org, api_as, persona):
    user = getattr(org, persona)
    api = api_as(user)
    pid = pipeline_default().pk
    assert api.get("/api/v1/pipelines").status_code == 200  # reading is open
    assert api.post(f"/api/v1/pipelines/{pid}/draft").status_code == 403
    assert api.post(f"/api/v1/pipelines/{pid}/copy", {"code": "x", "name": "x"}).status_code == 403
    editor.pipeline_draft_open(actor=org.admin, pipeline=pipeline_default())
    assert put(client, user, f"/api/v1/pipelines/{pid}/draft", {"name": "x", "stages": []}).status_code == 403
    assert api.post(f"/api/v1/pipelines/{pid}/publish").status_code == 403
    client.force_login(user)
    page = client.get(f"/pipelines/{pid}/")
    assert page.status_code == 200 and "pipeline-draft-save" not in page.content.decode()
    assert 'name="rows"' not in page.content.decode()
    assert client.post(f"/pipelines/{pid}/publish").status_code == 403
    assert PipelineVersion.objects.get(pipeline_id=pid, number=1).status == VersionStatus.LIVE


def test_unknown_pipelines_are_404(org, api_as):
    api = api_as(org.admin)
    assert api.get("/api/v1/pipelines/999999").status_code == 404
    assert api.post("/api/v1/pipelines/999999/publish").status_code == 404
    assert api.post(f"/api/v1/pipelines/{pipeline_default().pk}/publish").status_code == 404  # no draft


# --- the editor's page ------------------------------------------------------------------------------


def test_the_editor_page_reorders_adds_removes_and_publishes(client, org):
    pid = pipeline_default().pk
    client.force_login(org.director)
    assert client.post(f"/pipelines/{pid}/draft/open").status_code == 302
    page = unescape(client.get(f"/pipelines/{pid}/").content.decode())
    assert 'name="rows" value="6"' in page  # five stages and an empty row to add one
    rows = {
        "name": "标准销售流程",
        "rows": "6",
        **{
            f"code-{i}": c
            for i, c in enumerate(
                ["screening", "needs_confirmed", "solution_demo", "quote_negotiation", "contract_signed"]
            )
        },
        **{f"name-{i}": n for i, n in enumerate(["初筛", "需求确认", "方案演示", "报价谈判", "合同签署"])},
        **{f"position-{i}": str(i + 1) for i in range(5)},
        **{f"requirements-{i}": "[]" for i in range(5)},
        "remove-3": "on",  # remove 报价谈判
        "code-5": "poc",
        "name-5": "试点",
        "position-5": "2.5",  # between 需求确认 and 方案演示
        "requirements-5": '[{"type": "field", "field": "expected_amount"}]',
    }
    response = client.post(f"/pipelines/{pid}/draft", rows)
    assert response.status_code == 302, unescape(response.content.decode())
    client.post(f"/pipelines/{pid}/publish")
    codes = [s.code for s in Stage.objects.filter(pipeline_id=pid).order_by("position")]
    assert codes == ["screening", "needs_confirmed", "poc", "solution_demo", "contract_signed"]
    assert live("poc").requirements == [{"type": "field", "field": "expected_amount"}]


def test_the_editor_page_shows_errors_with_paths(client, org):
    pid = pipeline_default().pk
    client.force_login(org.admin)
    client.post(f"/pipelines/{pid}/draft/open")
    response = client.post(
        f"/pipelines/{pid}/draft",
        {
            "name": "x",
            "rows": "2",
            "code-0": "screening",
            "name-0": "初筛",
            "position-0": "1",
            "requirements-0": '[{"type": "field", "field": "title"}]',
            "code-1": "won",
            "name-1": "赢单",
            "position-1": "2",
            "requirements-1": "[{not json",
        },
    )
    assert response.status_code == 422
    assert "JSON" in unescape(response.content.decode())
    response = client.post(
        f"/pipelines/{pid}/draft",
        {
            "name": "x",
            "rows": "2",
            "code-0": "screening",
            "name-0": "初筛",
            "position-0": "1",
            "requirements-0": '[{"type": "field", "field": "title"}]',
            "code-1": "won",
            "name-1": "赢单",
            "position-1": "2",
            "requirements-1": "[]",
        },
    )
    assert response.status_code == 422
    assert "screening · stages[0].requirements" in unescape(response.content.decode())


def test_home_counts_leads_on_older_versions_in_the_stage_of_that_code(client, org):
    lead = lead_make(owner=org.alice)
    lead_move_stage(actor=org.alice, lead=lead, to_stage=live("needs_confirmed"))
    publish_with(org.admin, document(pipeline_default()))
    lead_make(owner=org.alice)
    client.force_login(org.alice)
    cards = {card.label: card.count for card in client.get("/").context["stage_cards"]}
    assert cards["需求确认"] == 1 and cards["初筛"] == 1


def test_a_move_within_a_stage_across_versions_keeps_the_entry_time_and_rebuilds_the_same(org):
    from salesloop.crm.models import Lead
    from salesloop.pipeline.services import lead_projection_rebuild

    lead = lead_make(owner=org.alice)
    lead_move_stage(actor=org.alice, lead=lead, to_stage=live("needs_confirmed"))
    entered = Lead.objects.get(pk=lead.pk).stage_entered_at
    publish_with(org.admin, document(pipeline_default()))
    move = lead_move_stage(actor=org.alice, lead=lead, status="lost", reason="预算取消")
    assert move.explanation["direction"] == "same" and move.to_stage.version.number == 2
    fields = ("stage", "status", "stage_entered_at", "closed_at", "lost_reason")
    expected = Lead.objects.filter(pk=lead.pk).values(*fields).get()
    assert expected["stage_entered_at"] == entered
    Lead.objects.filter(pk=lead.pk).update(status="open", closed_at=None, lost_reason="")
    lead_projection_rebuild(lead_id=lead.pk)
    assert Lead.objects.filter(pk=lead.pk).values(*fields).get() == expected


def test_the_admin_lead_list_filters_by_stage_code(client, org):
    lead_make(owner=org.alice)
    org.admin.is_staff = org.admin.is_superuser = True
    org.admin.save()
    client.force_login(org.admin)
    response = client.get("/admin/crm/lead/", {"stage__code": "screening"})
    assert response.status_code == 200
