"""What one delivery writes: its customer, contact and lead audited by one `lead.arrive` entry, nothing
left behind when the person turns out to exist already, and the first stage of the source's pipeline.

(The per-delivery reads are written out as SQL for speed; these tests, like the rest of
tests/intake, run them on SQLite and PostgreSQL.)"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from salesloop.accounts.models import Province
from salesloop.core.models import AuditEntry
from salesloop.crm.models import Customer, Lead
from salesloop.crm.services import lead_arrive
from salesloop.intake.models import InboundEvent
from salesloop.intake.services import source_update
from salesloop.pipeline.models import Pipeline, PipelineVersion, Stage
from tests.factories import contact_make, customer_make
from tests.intake.conftest import clue, signed_post

pytestmark = pytest.mark.django_db


def arrival_entries(lead_id: int) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(target_type="crm.lead", target_id=str(lead_id)))


def test_a_new_person_is_audited_once_naming_each_record_created(client, douyin):
    # given a clue from a person and a company we have never seen
    # when it arrives
    body = signed_post(client, douyin, clue(1, phone="139 2600 0000")).json()
    # then one entry records the arrival: when, the lead's fields, and the customer and contact made for it
    lead = Lead.objects.select_related("customer", "contact").get(pk=body["lead_id"])
    [entry] = arrival_entries(lead.pk)
    assert (entry.action, entry.actor) == ("lead.arrive", None)  # a channel, not a person
    assert entry.after["title"] == "上海测试1科技有限公司"
    assert (entry.after["customer"], entry.after["contact"], entry.after["source"]) == (
        lead.customer_id,
        lead.contact_id,
        "douyin",
    )
    assert entry.after["created"]["customer"] == {
        "id": lead.customer_id,
        "name": "上海测试1科技有限公司",
        "industry": "",
        "size": "",
        "province": "44",
        "city": "广州",
    }
    assert entry.after["created"]["contact"]["id"] == lead.contact_id
    assert entry.after["created"]["contact"]["phone"] == "+8613926000000"
    assert entry.after["via"] == {"event": body["event_id"], "source_id": douyin.pk}
    # and no separate entries for the customer and the contact
    assert not AuditEntry.objects.filter(
        action__in=["customer.create", "contact.create", "lead.create"]
    ).exists()


def test_a_known_company_is_named_and_not_created_again(client, douyin):
    # given a customer we know, in 广东
    known = customer_make(province="44", name="上海测试1科技有限公司")
    # when a new person of that company arrives without a province of their own
    body = signed_post(client, douyin, clue(1, phone="13800138000")).json()
    # then their lead belongs to the known customer and its region, and only the contact was created
    lead = Lead.objects.get(pk=body["lead_id"])
    assert lead.customer_id == known.pk
    assert lead.region_id == Province.objects.get(code="44").region_id
    [entry] = arrival_entries(lead.pk)
    assert set(entry.after["created"]) == {"contact"}
    assert Customer.objects.count() == 1


def test_a_touch_adds_no_audit_entry(client, douyin):
    # given a person with an open lead
    first = signed_post(client, douyin, clue(1)).json()
    # when they come again
    again = signed_post(client, douyin, clue(2)).json()
    # then the touch is the event itself; the lead's audit still holds its one arrival
    assert again["status"] == "touch"
    assert InboundEvent.objects.get(pk=again["event_id"]).lead_id == first["lead_id"]
    assert [e.action for e in arrival_entries(first["lead_id"])] == ["lead.arrive"]


def test_lead_arrive_keeps_nothing_when_the_phone_is_taken(org):
    # given a contact who already has the number
    taken = contact_make(phone="13800138000")
    customers_before = Customer.objects.count()
    # when an arrival tries to create a new customer and a contact with the same number
    with pytest.raises(ValidationError) as refused:
        lead_arrive(
            actor=None,
            customer=None,
            new_customer={"name": "新公司"},
            contact=None,
            new_contact={"name": "张三", "phone": "+86 138 0013 8000"},
            source="api",
        )
    # then the refusal names the field and the contact who has it, and nothing of the arrival stays
    assert refused.value.message_dict == {"phone": [f"already belongs to contact #{taken.pk}"]}
    assert Customer.objects.count() == customers_before
    assert not Lead.objects.exists()
    assert not AuditEntry.objects.filter(action="lead.arrive").exists()


def test_a_lead_enters_the_first_stage_of_its_sources_pipeline(client, douyin, org):
    # given a source with a pipeline of its own, whose stages were not created in their order
    pipeline = Pipeline.objects.create(code="channel", name="渠道线索")
    version = PipelineVersion.objects.create(pipeline=pipeline, number=1, status="live", name="渠道线索")
    later = Stage.objects.create(version=version, pipeline=pipeline, code="qualify", name="甄别", position=2)
    first = Stage.objects.create(version=version, pipeline=pipeline, code="new", name="新线索", position=1)
    source_update(actor=org.admin, source=douyin, pipeline=pipeline)
    # when a clue arrives
    lead = Lead.objects.get(pk=signed_post(client, douyin, clue(1)).json()["lead_id"])
    # then the lead is in that pipeline's first stage, and its first move says so
    assert (lead.pipeline_id, lead.stage_id) == (pipeline.pk, first.pk)
    assert lead.stage_id != later.pk
    assert lead.moves.get().to_stage_id == first.pk


def test_without_a_pipeline_of_its_own_a_lead_enters_the_default_pipelines_first_stage(client, douyin):
    default = Pipeline.objects.get(is_default=True)
    lead = Lead.objects.get(pk=signed_post(client, douyin, clue(1)).json()["lead_id"])
    assert lead.pipeline_id == default.pk
    assert lead.stage_id == Stage.objects.filter(pipeline=default).order_by("position").first().pk
