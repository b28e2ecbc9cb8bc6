"""C10.1: defining custom fields — admins only, audited, names fixed, no change that breaks values."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from salesloop.core.models import AuditEntry
from salesloop.workspace.models import CustomField
from salesloop.workspace.selectors import custom_field_label, custom_fields_active
from salesloop.workspace.services import custom_field_archive, custom_field_update
from tests.factories import lead_make
from tests.workspace.conftest import CHOICES, field_make

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("persona", ["alice", "carol", "director", "pm"])
def test_only_admins_define_fields(org, persona):
    with pytest.raises(PermissionDenied):
        field_make(getattr(org, persona), "tier", "choice", choices=CHOICES)
    field = field_make(org.admin, "tier", "choice", choices=CHOICES)
    with pytest.raises(PermissionDenied):
        custom_field_update(actor=getattr(org, persona), field=field, label_zh="等级")
    with pytest.raises(PermissionDenied):
        custom_field_archive(actor=getattr(org, persona), field=field)


def test_create_update_and_archive_are_audited_with_before_and_after(org):
    field = field_make(org.admin, "seats", "number", label_zh="座席")
    custom_field_update(actor=org.admin, field=field, label_zh="座席数", validation={"max": 100})
    custom_field_archive(actor=org.admin, field=field)
    entries = list(AuditEntry.objects.filter(target_type="workspace.customfield").order_by("id"))
    assert [e.action for e in entries] == [
        "custom_field.create",
        "custom_field.update",
        "custom_field.archive",
    ]
    assert entries[0].actor == org.admin and entries[0].after["label_zh"] == "座席"
    assert entries[1].before["label_zh"] == "座席" and entries[1].after["label_zh"] == "座席数"
    assert entries[1].after["validation"] == {"max": 100}
    assert entries[2].before["archived"] is False and entries[2].after["archived"] is True


@pytest.mark.parametrize("name", ["Tier", "1tier", "tier-level", "a" * 33, "", "客户"])
def test_a_name_is_a_short_lowercase_key(org, name):
    with pytest.raises(ValidationError) as caught:
        field_make(org.admin, name, "text")
    assert "name" in caught.value.message_dict


def test_a_name_is_unique_per_entity_even_when_archived(org):
    field = field_make(org.admin, "tier", "text")
    custom_field_archive(actor=org.admin, field=field)
    with pytest.raises(ValidationError) as caught:
        field_make(org.admin, "tier", "number")
    assert "already exists" in caught.value.message_dict["name"][0]
    assert field_make(org.admin, "tier", "number", entity="customer").entity == "customer"


def test_the_name_and_entity_never_change(org):
    field = field_make(org.admin, "tier", "text")
    for key, value in (("name", "level"), ("entity", "customer")):
        with pytest.raises(ValidationError) as caught:
            custom_field_update(actor=org.admin, field=field, **{key: value})
        assert key in caught.value.message_dict
    assert CustomField.objects.get(pk=field.pk).name == "tier"


def test_a_type_change_existing_values_would_not_fit_is_refused(org):
    field = field_make(org.admin, "size", "text")
    lead_make(owner=org.alice, custom_fields={"size": "大型"})
    numeric = lead_make(owner=org.alice, custom_fields={"size": "120"})
    with pytest.raises(ValidationError) as caught:
        custom_field_update(actor=org.admin, field=field, field_type="number")
    message = caught.value.message_dict["field_type"][0]
    # "大型" is no number; "120" is, but it is kept as text and would need converting
    assert "2 existing value(s)" in message and "大型" in message and f"#{numeric.pk}" in message
    assert CustomField.objects.get(pk=field.pk).field_type == "text"


def test_a_type_change_all_values_fit_is_allowed(org):
    field = field_make(org.admin, "ref", "text")
    lead_make(owner=org.alice, custom_fields={"ref": "https://example.com/x"})
    updated = custom_field_update(actor=org.admin, field=field, field_type="link")
    assert updated.field_type == "link"


def test_removing_a_choice_in_use_is_refused_and_an_unused_one_is_allowed(org):
    field = field_make(org.admin, "tier", "choice", choices=CHOICES)
    lead_make(owner=org.alice, custom_fields={"tier": "a"})
    with pytest.raises(ValidationError) as caught:
        custom_field_update(actor=org.admin, field=field, choices=CHOICES[1:])
    assert "choices" in caught.value.message_dict
    assert len(custom_field_update(actor=org.admin, field=field, choices=CHOICES[:2]).choices) == 2


def test_tightening_a_bound_below_a_stored_value_is_refused(org):
    field = field_make(org.admin, "seats", "number")
    lead_make(owner=org.alice, custom_fields={"seats": 500})
    with pytest.raises(ValidationError) as caught:
        custom_field_update(actor=org.admin, field=field, validation={"max": 100})
    assert "validation" in caught.value.message_dict


@pytest.mark.parametrize(
    ("field_type", "extra", "key"),
    [
        ("choice", {}, "choices"),
        ("choice", {"choices": [{"value": "A b"}]}, "choices"),
        ("choice", {"choices": [{"value": "a"}, {"value": "a"}]}, "choices"),
        ("text", {"choices": CHOICES}, "choices"),
        ("text", {"validation": {"min": 1}}, "validation"),
        ("text", {"validation": {"pattern": "(["}}, "validation"),
        ("number", {"validation": {"min": 5, "max": 1}}, "validation"),
        ("number", {"validation": {"required": "yes"}}, "validation"),
        ("date", {"validation": {"min": "soon"}}, "validation"),
        ("colour", {}, "field_type"),
    ],
)
def test_a_definition_that_makes_no_sense_is_refused(org, field_type, extra, key):
    with pytest.raises(ValidationError) as caught:
        field_make(org.admin, "f", field_type, **extra)
    assert key in caught.value.message_dict


def test_active_fields_are_ordered_and_labelled_in_the_readers_language(org):
    late = field_make(org.admin, "late", "text", label_zh="后", label_en="Later", position=20)
    early = field_make(org.admin, "early", "text", label_zh="前", label_en="", position=10)
    gone = field_make(org.admin, "gone", "text", position=5)
    custom_field_archive(actor=org.admin, field=gone)
    assert custom_fields_active(entity="lead") == [early, late]
    assert custom_field_label(late, "en") == "Later"
    assert custom_field_label(late, "zh-hans") == "后"
    assert custom_field_label(early, "en") == "前"  # no English label: the Chinese one


def test_lead_and_customer_services_validate_and_audit_custom_values(org, fields):
    from salesloop.crm.services import customer_update, lead_update

    lead = lead_make(owner=org.alice, custom_fields={"seats": "20"})
    assert lead.custom_fields == {"seats": 20}
    with pytest.raises(ValidationError) as caught:
        lead_update(actor=org.alice, lead=lead, custom_fields={"seats": "x"})
    assert "custom_fields.seats" in caught.value.message_dict
    lead_update(actor=org.alice, lead=lead, custom_fields={"tier": "a", "seats": None})
    lead.refresh_from_db()
    assert lead.custom_fields == {"tier": "a"}
    entry = AuditEntry.objects.filter(action="lead.update", target_id=str(lead.pk)).first()
    assert entry.before["custom_fields"] == {"seats": 20} and entry.after["custom_fields"] == {"tier": "a"}
    customer_update(actor=org.alice, customer=lead.customer, custom_fields={"credit": "b"})
    lead.customer.refresh_from_db()
    assert lead.customer.custom_fields == {"credit": "b"}
