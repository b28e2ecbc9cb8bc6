"""core.rows reads model rows with hand-written SQL: the instances must be the ORM's, value for
value — JSON decoded, datetimes aware, foreign keys as ids — on both databases."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import models

from salesloop.core.rows import first_row, model_rows
from salesloop.intake.models import InboundEvent, Source
from salesloop.intake.services import source_create

pytestmark = pytest.mark.django_db


def _values(instance: models.Model) -> dict[str, object]:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_a_row_read_by_hand_is_the_instance_the_orm_reads():
    source = source_create(actor=None, kind="api", name="接口", secret="s" * 24)
    Source.objects.filter(pk=source.pk).update(field_mapping={"phone": "tel", "名字": ["name"]})
    got = first_row(Source, "slug = %s", [source.slug], order_by="")
    expected = Source.objects.get(pk=source.pk)
    assert got is not None and _values(got) == _values(expected)
    assert got.field_mapping == {"phone": "tel", "名字": ["name"]}  # decoded, not text
    assert got.created_at.tzinfo is not None
    assert not got._state.adding  # saving it updates the row
    got.name = "接口2"
    got.save(update_fields=["name"])
    assert Source.objects.get(pk=source.pk).name == "接口2"


def test_rows_come_in_the_order_asked_and_none_when_nothing_matches():
    source = source_create(actor=None, kind="api", name="接口", secret="s" * 24)
    at = dt.datetime(2026, 11, 1, 8, tzinfo=dt.UTC)
    for n in range(3):
        InboundEvent.objects.create(source=source, external_id=f"e{n}", body="{}", received_at=at)
    found = model_rows(InboundEvent, "source_id = %s", [source.pk], order_by="id DESC", limit=2)
    assert [e.external_id for e in found] == ["e2", "e1"]
    assert found[0].received_at == at and found[0].source_id == source.pk
    assert first_row(Source, "slug = %s", ["no-such-slug"]) is None
