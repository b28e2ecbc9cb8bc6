"""Factories for tests. They create records through the services, so tests exercise real code."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from salesloop.accounts.models import Province, Region, User
from salesloop.accounts.services import user_create
from salesloop.crm.models import Contact, Customer, Lead
from salesloop.crm.services import contact_create, customer_create, lead_create

_seq = itertools.count(1)
PASSWORD = "correct-horse-9"


def region_make(code: str, name: str, province_codes: list[str]) -> Region:
    region = Region.objects.create(code=code, name=name)
    Province.objects.filter(code__in=province_codes).update(region=region)
    return region


def user_make(
    role: str = "rep", region: Region | None = None, username: str | None = None, **extra: Any
) -> User:
    return user_create(
        actor=None,
        username=username or f"{role}{next(_seq)}",
        password=PASSWORD,
        role=role,
        region=region,
        **extra,
    )


def customer_make(province: str = "31", name: str | None = None, **extra: Any) -> Customer:
    n = next(_seq)
    return customer_create(
        actor=None,
        name=name or f"测试客户{n}有限公司",
        industry=extra.pop("industry", "工业设备"),
        province=Province.objects.get(code=province),
        city=extra.pop("city", ""),
        **extra,
    )


def contact_make(customer: Customer | None = None, phone: str | None = None, **extra: Any) -> Contact:
    n = next(_seq)
    return contact_create(
        actor=None,
        customer=customer,
        name=extra.pop("name", f"联系人{n}"),
        phone=phone if phone is not None else f"+86139{n:08d}",
        **extra,
    )


def lead_make(
    owner: User | None = None, province: str = "31", customer: Customer | None = None, **extra: Any
) -> Lead:
    customer = customer or customer_make(province=province)
    contact = extra.pop("contact", None) or contact_make(customer=customer)
    return lead_create(
        actor=None,
        customer=customer,
        contact=contact,
        owner=owner,
        source=extra.pop("source", "web_form"),
        expected_amount=extra.pop("expected_amount", Decimal("100000")),
        **extra,
    )


def attachment_make(lead: Lead, kind: str, title: str | None = None, url: str | None = None) -> Any:
    """An attachment of a kind on a lead (a link; files work the same for stage gates)."""
    from salesloop.crm.models import Attachment

    return Attachment.objects.create(
        lead=lead, kind=kind, title=title or kind, url=url or f"https://example.com/{kind}/{lead.pk}"
    )


def lead_ready_for(lead: Lead, stage_code: str) -> Lead:
    """Give a lead what the entry requirements of its pipeline's stages up to `stage_code` need
    (SPEC C2.2): the attachments of each required kind, and the fields lead_make leaves empty."""
    from salesloop.pipeline.models import Stage

    stages = list(Stage.objects.filter(pipeline_id=lead.pipeline_id).order_by("position"))
    target = next(stage for stage in stages if stage.code == stage_code)
    lead.refresh_from_db()
    for stage in stages:
        if stage.position > target.position:
            break
        for item in stage.requirements:
            if item["type"] == "attachment":
                if not lead.attachments.filter(kind=item["kind"], removed_at__isnull=True).exists():
                    attachment_make(lead, item["kind"])
            elif item["field"] == "expected_amount" and not lead.expected_amount:
                Lead.objects.filter(pk=lead.pk).update(expected_amount=Decimal("100000"))
            elif item["field"].startswith("custom."):
                lead.custom_fields[item["field"].removeprefix("custom.")] = "ok"
                Lead.objects.filter(pk=lead.pk).update(custom_fields=lead.custom_fields)
            elif item["field"].startswith("customer.custom."):
                customer = lead.customer
                customer.custom_fields[item["field"].removeprefix("customer.custom.")] = "ok"
                Customer.objects.filter(pk=customer.pk).update(custom_fields=customer.custom_fields)
    lead.refresh_from_db()
    return lead
