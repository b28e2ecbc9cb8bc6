"""C10.1: each type's values, checked and normalised by custom_values_clean (SPEC C10.1)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from salesloop.crm.models import Attachment
from salesloop.workspace.services import custom_field_archive, custom_field_update, custom_values_clean
from tests.factories import lead_make
from tests.workspace.conftest import field_make

pytestmark = pytest.mark.django_db


def clean(values, *, partial=True, entity="lead", record=None):
    return custom_values_clean(entity=entity, values=values, partial=partial, record=record)


def refusal(values, **kwargs) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        clean(values, **kwargs)
    return caught.value.message_dict


@pytest.mark.parametrize(
    ("name", "given", "stored"),
    [
        ("code", " AB12 ", "AB12"),
        ("notes", "第一行\n第二行", "第一行\n第二行"),
        ("seats", "120", 120),
        ("seats", 12.5, 12.5),
        ("budget", "1,234.5", "1234.50"),
        ("budget", 99, "99.00"),
        ("tier", "b", "b"),
        ("tags", ["c", "a", "a"], ["a", "c"]),
        ("decision_on", "2026-12-01", "2026-12-01"),
        ("site", "https://example.com/a?b=1", "https://example.com/a?b=1"),
    ],
)
def test_good_values_are_stored_in_their_normal_form(fields, name, given, stored):
    assert clean({name: given}) == {name: stored}


@pytest.mark.parametrize(
    ("name", "given", "message"),
    [
        ("code", "AB123456789", "at most 8 characters"),
        ("code", "ab12", "does not match the pattern"),
        ("code", 12, "must be text"),
        ("code", "AB\x001", "NUL"),
        ("seats", "many", "not a number"),
        ("seats", 0, "at least 1"),
        ("seats", 20000, "at most 10000"),
        ("seats", True, "must be a number"),
        ("seats", "NaN", "finite"),
        ("budget", "10.001", "2 decimal places"),
        ("budget", "-5", "at least 0"),
        ("budget", "1e13", "too large"),
        ("tier", "z", "one of a, b, c"),
        ("tier", ["a"], "one of"),
        ("tags", ["a", "x"], "not a choice"),
        ("tags", {"a": 1}, "list of choices"),
        ("decision_on", "2026-02-30", "not a date"),
        ("decision_on", "01/12/2026", "YYYY-MM-DD"),
        ("site", "ftp://example.com", "http:// or https://"),
        ("site", "javascript:alert(1)", "http:// or https://"),
        ("contract", "abc", "id of an attachment"),
    ],
)
def test_bad_values_are_refused_naming_the_field(fields, name, given, message):
    errors = refusal({name: given})
    assert list(errors) == [f"custom_fields.{name}"]
    assert message in errors[f"custom_fields.{name}"][0]


def test_every_bad_field_is_reported_at_once(fields):
    errors = refusal({"seats": "x", "tier": "z", "site": "nope"})
    assert set(errors) == {"custom_fields.seats", "custom_fields.tier", "custom_fields.site"}


def test_an_unknown_key_is_refused_by_name(fields):
    errors = refusal({"colour": "red"})
    assert errors == {"custom_fields.colour": ["no such custom field"]}


def test_a_field_of_the_other_entity_is_unknown(fields):
    assert "custom_fields.credit" in refusal({"credit": "a"}, entity="lead")
    assert clean({"credit": "a"}, entity="customer") == {"credit": "a"}


def test_not_an_object_is_refused(fields):
    assert "custom_fields" in refusal(["seats"])


def test_required_fields_must_be_given_on_create_and_cannot_be_cleared(org, fields):
    custom_field_update(actor=org.admin, field=fields["tier"], validation={"required": True})
    assert refusal({}, partial=False) == {"custom_fields.tier": ["required"]}
    assert refusal({"tier": ""}, partial=True) == {"custom_fields.tier": ["required"]}
    assert clean({"tier": "a"}, partial=False) == {"tier": "a"}
    assert clean({"seats": 5}, partial=True) == {"seats": 5}  # a change need not repeat it


def test_an_empty_value_clears_an_optional_field(fields):
    assert clean({"seats": "", "tags": [], "site": None}) == {"seats": None, "tags": None, "site": None}
    assert clean({"seats": ""}, partial=False) == {}


def test_archived_fields_are_read_only_but_keep_their_value(org, fields):
    lead = lead_make(owner=org.alice, custom_fields={"tier": "a"})
    custom_field_archive(actor=org.admin, field=fields["tier"])
    errors = refusal({"tier": "b"}, record=lead)
    assert "archived" in errors["custom_fields.tier"][0]
    assert "archived" in refusal({"tier": None}, record=lead)["custom_fields.tier"][0]
    assert clean({"tier": "a"}, record=lead) == {}  # the kept value echoed back is no change
    lead.refresh_from_db()
    assert lead.custom_fields == {"tier": "a"}


def test_a_file_value_is_an_attachment_of_the_same_lead(org, fields):
    lead = lead_make(owner=org.alice)
    other = lead_make(owner=org.alice)
    mine = Attachment.objects.create(
        lead=lead, kind="custom-contract", title="合同.pdf", url="https://x.test/a.pdf"
    )
    theirs = Attachment.objects.create(
        lead=other, kind="custom-contract", title="b", url="https://x.test/b.pdf"
    )
    assert clean({"contract": mine.pk}, record=lead) == {"contract": mine.pk}
    assert clean({"contract": str(mine.pk)}, record=lead) == {"contract": mine.pk}
    assert "no attachment" in refusal({"contract": theirs.pk}, record=lead)["custom_fields.contract"][0]
    assert "attach the file" in refusal({"contract": mine.pk})["custom_fields.contract"][0]


def test_a_customer_file_field_takes_an_attachment_of_one_of_its_leads(org):
    field_make(org.admin, "licence", "file", entity="customer")
    lead = lead_make(owner=org.alice)
    attachment = Attachment.objects.create(
        lead=lead, kind="custom-licence", title="l", url="https://x.test/l"
    )
    assert clean({"licence": attachment.pk}, entity="customer", record=lead.customer) == {
        "licence": attachment.pk
    }


def test_date_bounds_apply(org):
    field_make(org.admin, "start", "date", validation={"min": "2026-01-01", "max": "2026-12-31"})
    assert clean({"start": "2026-06-01"}) == {"start": "2026-06-01"}
    assert "at least 2026-01-01" in refusal({"start": "2025-12-31"})["custom_fields.start"][0]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(
        ["code", "notes", "seats", "budget", "tier", "tags", "decision_on", "site", "contract", "nope"]
    ),
    value=json_values,
)
def test_any_json_value_is_stored_or_refused_by_field_and_cleaning_is_stable(fields, name, value):
    try:
        cleaned = clean({name: value})
    except ValidationError as exc:
        assert list(exc.message_dict) == [f"custom_fields.{name}"]
        return
    # what was stored is stored again unchanged: the stored form is its own normal form
    if cleaned[name] is not None:
        assert clean(cleaned) == cleaned
