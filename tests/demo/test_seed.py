"""`salesloop seed`: the deterministic demo organisation and its generated leads."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import random
from collections import Counter, defaultdict

import phonenumbers
import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from salesloop.accounts.geography import DEMO_REGIONS
from salesloop.accounts.models import Province, Region, Team, User
from salesloop.core import explanations
from salesloop.core.models import AuditEntry
from salesloop.core.roles import Role
from salesloop.crm.models import Channel, CompanySize, Contact, Lead, company_key
from salesloop.crm.phones import phone_parse
from salesloop.demo.generator import DEMO_PASSWORD, demo_logins, seed_run
from salesloop.pipeline.models import StageMove
from salesloop.pipeline.services import lead_projection_rebuild
from tests.demo.conftest import demo_data_delete, demo_digest

pytestmark = pytest.mark.django_db

LEADS = 400


def test_the_same_seed_gives_the_same_data(frozen_now):
    # given a database seeded once
    seed_run(seed=7, leads=LEADS)
    first = demo_digest()

    # when everything generated is removed and the same seed runs again
    demo_data_delete()
    seed_run(seed=7, leads=LEADS)

    # then every record is the same again
    assert demo_digest() == first

    # and another seed gives other data (so the digest would notice a difference)
    demo_data_delete()
    seed_run(seed=8, leads=LEADS)
    assert demo_digest() != first


def test_reading_ahead_on_a_thread_changes_nothing(frozen_now):
    seed_run(seed=11, leads=250, chunk_size=60, read_ahead=True)
    threaded = demo_digest()
    demo_data_delete()
    seed_run(seed=11, leads=250, chunk_size=60, read_ahead=False)
    assert demo_digest() == threaded


def test_it_creates_the_demo_organisation_once(frozen_now):
    # when
    first = seed_run(seed=1, leads=30)
    second = seed_run(seed=1, leads=30)

    # then the organisation has the documented shape
    assert first.users_created == 23 and second.users_created == 0
    roles = Counter(User.objects.values_list("role", flat=True))
    assert roles == {"director": 1, "product_manager": 1, "admin": 1, "manager": 4, "rep": 16}
    for code, name, province_codes in DEMO_REGIONS:
        region = Region.objects.get(code=code)
        assert region.name == name
        assert set(region.provinces.values_list("code", flat=True)) == set(province_codes)
        assert Team.objects.get(region=region).members.count() == 5  # manager + 4 reps
        assert User.objects.get(role="manager", region=region).username == f"manager_{code}"
        assert User.objects.filter(role="rep", region=region).count() == 4
    admin = User.objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    assert not User.objects.get(username="director").is_staff
    assert all(
        "\u4e00" <= name[0] <= "\u9fff" for name in User.objects.values_list("display_name", flat=True)
    )

    # and every demo login works with the shared password
    logins = demo_logins()
    assert len(logins) == 23
    assert ("manager_south", str(Role.MANAGER.label), "华南") in logins
    for username, _role, _region in logins:
        assert authenticate(username=username, password=DEMO_PASSWORD) is not None

    # and the second run added leads with new ids
    assert Lead.objects.count() == 60
    assert second.first_lead_id == first.last_lead_id + 1


def test_every_phone_is_real_e164_from_the_customers_province(frozen_now):
    seed_run(seed=3, leads=LEADS)

    contacts = list(Contact.objects.select_related("customer__province"))
    assert len(contacts) == LEADS
    assert len({c.phone for c in contacts}) == LEADS
    for contact in contacts:
        number = phonenumbers.parse(contact.phone)
        assert phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == contact.phone
        info = phone_parse(contact.phone)
        assert info.kind == "mobile"
        assert info.province == contact.customer.province.name
        assert info.city == contact.customer.city
    wecom = [c.wecom_external_id for c in contacts if c.wecom_external_id]
    assert wecom and all(w.startswith("wm") for w in wecom) and len(set(wecom)) == len(wecom)
    assert any(c.email for c in contacts)


def test_leads_look_like_a_real_funnel(frozen_now):
    result = seed_run(seed=5, leads=LEADS)

    leads = list(Lead.objects.select_related("customer__province", "owner", "stage"))
    regions_by_province = dict(Province.objects.values_list("code", "region_id"))
    sources = Counter(lead.source for lead in leads)
    assert (
        set(sources) == {"douyin", "wecom", "web_form", "call_400", "card", "referral"} <= set(Channel.values)
    )
    assert sources.most_common(1)[0][0] == "douyin"
    assert all(lead.campaign.startswith("抖音") for lead in leads if lead.source == "douyin")
    assert 0 < sum(lead.owner_id is None for lead in leads) < LEADS * 0.1
    for lead in leads:
        assert lead.region_id == regions_by_province[lead.customer.province_id]
        assert lead.owner is None or (lead.owner.role == "rep" and lead.owner.region_id == lead.region_id)
        assert lead.assigned_at == (lead.created_at if lead.owner_id else None)
        assert 50_000 <= lead.expected_amount <= 2_000_000
        assert lead.customer.size in CompanySize.values
        assert lead.customer.name.endswith("有限公司")
        assert lead.customer.name_key == company_key(lead.customer.name)
        assert frozen_now - dt.timedelta(days=183) <= lead.created_at <= frozen_now
    assert result.counts()["leads"] == LEADS


def test_stage_histories_are_plausible_and_explained(frozen_now):
    seed_run(seed=9, leads=LEADS)
    moves_by_lead: dict[int, list[StageMove]] = defaultdict(list)
    for move in StageMove.objects.select_related("from_stage", "to_stage").order_by("at", "id"):
        moves_by_lead[move.lead_id].append(move)
    leads = {lead.pk: lead for lead in Lead.objects.all()}

    backward = won = lost = 0
    for lead_id, moves in moves_by_lead.items():
        lead = leads[lead_id]
        first = moves[0]
        assert first.from_stage is None and first.to_stage.code == "screening"
        assert first.at == lead.created_at and first.to_status == "open"
        for before, after in itertools.pairwise(moves):
            assert before.at < after.at
            assert (
                after.from_stage_id == before.to_stage_id and after.from_status == before.to_status == "open"
            )
        for move in moves:
            assert move.at <= frozen_now
            assert explanations.validate(move.explanation) == move.explanation
            if move.from_stage and move.to_stage.position < move.from_stage.position:
                backward += 1
                assert move.explanation["direction"] == "backward"
            if move.to_status == "won":
                won += 1
                assert move.to_stage.code == "contract_signed"
            if move.to_status == "lost":
                lost += 1
                assert move.reason and move.from_stage_id == move.to_stage_id
    assert set(moves_by_lead) == set(leads)
    assert backward > 0 and won > 0 and lost > 0

    # older leads are further along: most of the oldest are closed, most of the newest open
    by_age = sorted(leads.values(), key=lambda lead: lead.created_at)
    oldest, newest = by_age[:50], by_age[-50:]
    assert sum(lead.status == "open" for lead in oldest) <= 5
    assert sum(lead.status == "open" for lead in newest) >= 25


def test_the_lead_rows_equal_the_projection_of_their_moves(frozen_now):
    seed_run(seed=13, leads=LEADS)
    fields = ("stage_id", "status", "stage_entered_at", "closed_at", "lost_reason")
    stored = {lead.pk: [getattr(lead, f) for f in fields] for lead in Lead.objects.all()}

    for lead_id in random.Random(0).sample(sorted(stored), 80):
        rebuilt = lead_projection_rebuild(lead_id=lead_id)
        assert [getattr(rebuilt, f) for f in fields] == stored[lead_id], lead_id


def test_a_taken_phone_or_wecom_id_is_drawn_again(frozen_now):
    # given the contacts of a first run, still there after their leads were removed
    seed_run(seed=21, leads=120)
    taken_phones = set(Contact.objects.values_list("phone", flat=True))
    taken_wecom = set(
        Contact.objects.exclude(wecom_external_id="").values_list("wecom_external_id", flat=True)
    )
    StageMove.objects.all().delete()
    Lead.objects.all().delete()

    # when the same seed runs again from the same lead ids, it would make the same numbers
    result = seed_run(seed=21, leads=120)

    # then it draws new ones instead of failing on the unique constraint
    assert result.identities_redrawn > 0
    phones = list(Contact.objects.values_list("phone", flat=True))
    assert len(phones) == len(set(phones)) == 240
    new = Contact.objects.filter(leads__isnull=False)
    assert not taken_phones & set(new.values_list("phone", flat=True))
    assert not taken_wecom & set(
        new.exclude(wecom_external_id="").values_list("wecom_external_id", flat=True)
    )
    for contact in new.select_related("customer__province"):
        assert phone_parse(contact.phone).province == contact.customer.province.name


def test_the_seed_command_adds_leads_and_audits_the_run_once(frozen_now):
    out = io.StringIO()

    call_command("seed", leads=120, seed=4, quiet=True, stdout=out)

    assert out.getvalue() == ""
    assert Lead.objects.count() == 120
    entries = AuditEntry.objects.filter(action="demo.seed")
    assert entries.count() == 1
    entry = entries.get()
    assert entry.after["seed"] == 4 and entry.after["counts"]["leads"] == 120
    assert entry.after["counts"]["stage_moves"] == StageMove.objects.count()
    assert not AuditEntry.objects.filter(action__in=["lead.create", "contact.create"]).exists()


def test_the_seed_command_reports_progress_and_rate(frozen_now):
    out = io.StringIO()

    call_command("seed", leads=50, stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[-1].startswith("Seeded 50 leads") and lines[-1].endswith("leads/s")
    assert any("50 / 50 leads" in line for line in lines)
