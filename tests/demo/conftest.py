from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator

import pytest

from salesloop.accounts.models import User
from salesloop.core import clock
from salesloop.crm.models import Contact, Customer, Lead
from salesloop.demo.org import DEMO_USERS
from salesloop.pipeline.models import StageMove

# A fixed "now": the demo data is deterministic relative to the clock.
NOW = dt.datetime(2026, 3, 16, 4, 30, 15, 123456, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    # 23 demo users × Django's full PBKDF2 would dominate these tests' run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def frozen_now() -> Iterator[dt.datetime]:
    with clock.frozen(NOW):
        yield NOW


def demo_digest() -> str:
    """A fingerprint of every generated record, ids taken relative to the first lead, contact,
    customer and move, and people by username (a recreated user gets a new id)."""
    leads = list(
        Lead.objects.order_by("id").values_list(
            "id", "title", "customer_id", "contact_id", "source", "campaign", "owner__username",
            "region__code", "stage__code", "status", "lost_reason", "expected_amount", "created_at",
            "stage_entered_at", "assigned_at", "closed_at",
        )
    )  # fmt: skip
    customers = list(
        Customer.objects.order_by("id").values_list("id", "name", "industry", "size", "province_id", "city")
    )
    contacts = list(
        Contact.objects.order_by("id").values_list(
            "id", "customer_id", "name", "title", "phone", "wecom_external_id", "email"
        )
    )
    moves = list(
        StageMove.objects.order_by("id").values_list(
            "id", "lead_id", "from_stage__code", "to_stage__code", "from_status", "to_status",
            "actor__username", "at", "note", "reason", "explanation",
        )
    )  # fmt: skip
    base_lead = leads[0][0] if leads else 0
    base_customer = customers[0][0] if customers else 0
    base_contact = contacts[0][0] if contacts else 0
    base_move = moves[0][0] if moves else 0
    rows: list[tuple[object, ...]] = []
    rows += [(r[0] - base_lead, r[1], r[2] - base_customer, r[3] - base_contact, *r[4:]) for r in leads]
    rows += [(r[0] - base_customer, *r[1:]) for r in customers]
    rows += [(r[0] - base_contact, r[1] - base_customer, *r[2:]) for r in contacts]
    rows += [(r[0] - base_move, r[1] - base_lead, *r[2:]) for r in moves]
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def demo_data_delete() -> None:
    """Everything the generator made, so that the next run starts from the same empty state."""
    StageMove.objects.all().delete()
    Lead.objects.all().delete()
    Contact.objects.all().delete()
    Customer.objects.all().delete()
    User.objects.filter(username__in=[u.username for u in DEMO_USERS]).delete()
