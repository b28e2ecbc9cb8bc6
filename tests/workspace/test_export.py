"""The lead export (C10.1, and "every export logged"): CSV with custom fields as columns, in the
reader's language, scoped by role, masked where the role does not need personal data, logged."""

from __future__ import annotations

import csv
import io

import pytest

from salesloop.core.models import PersonalDataAccess
from salesloop.crm.models import Attachment
from salesloop.workspace import export
from tests.factories import contact_make, customer_make, lead_make

pytestmark = pytest.mark.django_db


def rows(response) -> list[list[str]]:
    assert response.status_code == 200, getattr(response, "content", b"")
    assert response.streaming
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))


def by_id(table: list[list[str]]) -> dict[int, dict[str, str]]:
    header = table[0]
    return {int(row[0]): dict(zip(header, row, strict=True)) for row in table[1:]}


@pytest.fixture
def leads(org, fields):
    customer = customer_make(name="上海云启科技有限公司", custom_fields={"credit": "b"})
    alice_lead = lead_make(
        owner=org.alice,
        customer=customer,
        contact=contact_make(customer=customer, phone="+8613912345678", wecom_external_id="wm-zhou-0001"),
        custom_fields={"tier": "a", "tags": ["a", "c"], "budget": "1200.00", "decision_on": "2026-12-01"},
    )
    bob_lead = lead_make(owner=org.bob, custom_fields={"tier": "b"})
    erin_lead = lead_make(owner=org.erin, province="44", custom_fields={"tier": "a"})
    return {"alice": alice_lead, "bob": bob_lead, "erin": erin_lead}


def test_the_page_export_has_custom_columns_labelled_in_chinese(client, org, leads):
    client.force_login(org.alice)
    table = rows(client.get("/leads/export.csv"))
    header = table[0]
    assert header[:3] == ["编号", "线索", "客户"]
    assert "客户等级" in header and "标签" in header and "客户：信用" in header
    row = by_id(table)[leads["alice"].pk]
    assert row["客户等级"] == "甲类"
    assert row["标签"] == "甲类; 丙类"
    assert row["预算"] == "1200.00"
    assert row["决策日期"] == "2026-12-01"
    assert row["客户：信用"] == "乙类"


def test_the_api_export_speaks_english_when_asked(org, api_as, leads):
    table = rows(api_as(org.director).get("/api/v1/exports/leads.csv", lang="en"))
    assert table[0][:3] == ["ID", "Lead", "Customer"]
    assert "Tier" in table[0] and "Customer: Credit" in table[0]
    assert by_id(table)[leads["alice"].pk]["Tier"] == "Class A"


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("alice", {"alice"}),
        ("bob", {"bob"}),
        ("carol", {"alice", "bob"}),
        ("dave", {"erin"}),
        ("director", {"alice", "bob", "erin"}),
    ],
)
def test_the_export_holds_only_the_readers_leads(client, org, leads, persona, expected):
    client.force_login(getattr(org, persona))
    assert set(by_id(rows(client.get("/leads/export.csv")))) == {leads[name].pk for name in expected}


def test_the_export_keeps_the_lists_filters(client, org, leads):
    client.force_login(org.director)
    assert set(by_id(rows(client.get("/leads/export.csv", {"cf.tier": "a"})))) == {
        leads["alice"].pk,
        leads["erin"].pk,
    }
    assert set(by_id(rows(client.get("/leads/export.csv", {"owner": org.bob.pk})))) == {leads["bob"].pk}


@pytest.mark.parametrize(
    ("persona", "unmasked"),
    [("alice", True), ("carol", True), ("admin", True), ("director", False), ("pm", False)],
)
def test_phones_and_wecom_ids_are_masked_for_roles_that_do_not_need_them(
    client, org, leads, persona, unmasked
):
    client.force_login(getattr(org, persona))
    row = by_id(rows(client.get("/leads/export.csv")))[leads["alice"].pk]
    if unmasked:
        assert row["电话"] == "+8613912345678" and row["企业微信"] == "wm-zhou-0001"
    else:
        assert row["电话"] == "139****5678" and row["企业微信"] == "wm-***001"


def test_every_export_is_logged_and_each_unmasked_contact_too(client, org, leads):
    client.force_login(org.alice)
    rows(client.get("/leads/export.csv", {"cf.tier": "a"}))
    entries = PersonalDataAccess.objects.filter(actor=org.alice, kind="export")
    summary = entries.get(subject_type="crm.lead")
    assert summary.channel == "page" and "filter:cf.tier=a" in summary.fields
    contact = entries.get(subject_type="crm.contact")
    assert contact.subject_id == str(leads["alice"].contact_id)
    assert contact.fields == ["phone", "wecom_external_id"]


def test_a_masked_export_is_logged_without_contact_entries(org, api_as, leads):
    rows(api_as(org.director).get("/api/v1/exports/leads.csv"))
    entries = PersonalDataAccess.objects.filter(actor=org.director, kind="export")
    assert [(e.subject_type, e.channel) for e in entries] == [("crm.lead", "api")]


def test_the_export_streams_in_keyset_chunks(client, org, fields, monkeypatch):
    monkeypatch.setattr(export, "CHUNK", 3)
    made = [lead_make(owner=org.alice, custom_fields={"seats": n}).pk for n in range(1, 8)]
    client.force_login(org.alice)
    response = client.get("/leads/export.csv")
    chunks = list(response.streaming_content)
    assert len(chunks) == 1 + 3  # the header, then 3 + 3 + 1 rows
    table = list(csv.reader(io.StringIO(b"".join(chunks).decode().removeprefix("\ufeff"))))
    assert [int(row[0]) for row in table[1:]] == sorted(made, reverse=True)


def test_cells_never_become_spreadsheet_formulas(client, org, fields):
    lead = lead_make(owner=org.alice, title='=HYPERLINK("http://evil")', custom_fields={"notes": "+1 call"})
    client.force_login(org.alice)
    row = by_id(rows(client.get("/leads/export.csv")))[lead.pk]
    assert row["线索"].startswith("'=")
    assert row["备注"] == "'+1 call"


def test_file_fields_export_the_attachment(client, org, fields):
    from salesloop.crm.services import lead_update

    lead = lead_make(owner=org.alice)
    attachment = Attachment.objects.create(
        lead=lead, kind="custom-contract", title="合同", url="https://files.test/c.pdf"
    )
    lead_update(actor=org.alice, lead=lead, custom_fields={"contract": attachment.pk})
    client.force_login(org.alice)
    assert by_id(rows(client.get("/leads/export.csv")))[lead.pk]["合同"] == "合同 (https://files.test/c.pdf)"


def test_a_bad_filter_is_refused_before_anything_streams(org, api_as, client, fields):
    response = api_as(org.alice).get("/api/v1/exports/leads.csv", **{"cf.colour": "x"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "cf.colour"]
    client.force_login(org.alice)
    assert client.get("/leads/export.csv", {"cf.colour": "x"}).status_code == 302
    assert not PersonalDataAccess.objects.filter(kind="export").exists()


def test_exporting_needs_a_login(client):
    assert client.get("/leads/export.csv").status_code == 302


def test_the_api_export_keeps_the_health_filter_of_the_list(org, api_as, leads):
    # given: alice's lead is below the red line, bob's above it, erin's not scored yet
    from salesloop.crm.models import Lead

    Lead.objects.filter(pk=leads["alice"].pk).update(health_score=12)
    Lead.objects.filter(pk=leads["bob"].pk).update(health_score=85)
    # when: the director exports what the list shows for ?health=red and ?health=ok
    red = by_id(rows(api_as(org.director).get("/api/v1/exports/leads.csv", health="red")))
    ok = by_id(rows(api_as(org.director).get("/api/v1/exports/leads.csv", health="ok")))
    # then: the same leads as the list
    assert set(red) == {leads["alice"].pk}
    assert set(ok) == {leads["bob"].pk}
