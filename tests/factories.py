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
