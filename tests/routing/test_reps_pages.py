"""C8.5 pages: the manager's specialty review and a rep's routing profile, through Django's test
client (real HTTP requests, real database). Chinese by default; the layout is the lead list's
(a table on a desk, cards on a phone)."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest

from salesloop.core import clock
from salesloop.core.models import AuditEntry
from salesloop.routing import reps
from salesloop.routing.models import Leave, RepProfile
from tests.factories import customer_make, user_make
from tests.routing.test_reps import EQUIP, MED, record

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def text(response) -> str:
    return unescape(response.content.decode())


def page_as(client, user, path: str, **extra):
    client.force_login(user)
    return client.get(path, **extra)


@pytest.fixture
def east_record(org):
    record(org.alice, MED, won=6, lost=2)
    record(org.alice, EQUIP, won=2, lost=6)
    record(org.bob, MED, won=1, lost=3)
    record(org.bob, EQUIP, won=6, lost=2)


# --- who gets in -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/routing/reps/", "/routing/reps/{alice}/"])
def test_it_sends_anonymous_visitors_to_login(client, org, path):
    response = client.get(path.format(alice=org.alice.pk))
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


def test_anonymous_posts_change_nothing(client, org):
    response = client.post(f"/routing/reps/{org.alice.pk}/", {"max_open_leads": "1"})
    assert response.status_code == 302
    assert not RepProfile.objects.exists()


def test_a_rep_is_sent_to_their_own_profile_and_never_sees_a_colleagues(client, org):
    response = page_as(client, org.alice, "/routing/reps/")
    assert response.status_code == 302 and response["Location"] == f"/routing/reps/{org.alice.pk}/"
    assert client.get(f"/routing/reps/{org.bob.pk}/").status_code == 404


def test_a_manager_gets_404_for_another_regions_rep(client, org):
    assert page_as(client, org.carol, f"/routing/reps/{org.erin.pk}/").status_code == 404
    assert client.post(f"/routing/reps/{org.erin.pk}/tags", {"industry": MED}).status_code == 404


# --- the review --------------------------------------------------------------------------------


def test_the_review_shows_the_managers_reps_with_tags_suggestions_and_flags_in_chinese(
    client, org, east_record
):
    # given alice tagged 教育培训, an industry she never had a lead in
    customer_make(industry="教育培训")
    reps.rep_profile_update(actor=org.carol, user=org.alice, specialties=["教育培训"])
    # when carol opens the review
    response = page_as(client, org.carol, "/routing/reps/")
    page = text(response)
    # then: Chinese by default, her two reps and not erin
    assert response.status_code == 200
    assert '<html lang="zh-Hans">' in page and "专长标签" in page
    assert "Alice 王" in page and ">bob<" in page and "erin" not in page
    # alice's suggestion carries the numbers, with a button to accept it
    alice_row = re.search(rf'<tr id="rep-{org.alice.pk}".*?</tr>', page, re.S).group(0)
    assert "reps-row--flagged" in alice_row
    assert "6" in alice_row and "75%" in alice_row and MED in alice_row
    assert f'hx-post="/routing/reps/{org.alice.pk}/tags"' in alice_row
    assert 'data-flag="no_record"' in alice_row
    # bob has no tags: flagged as blank
    bob_row = re.search(rf'<tr id="rep-{org.bob.pk}".*?</tr>', page, re.S).group(0)
    assert 'data-flag="blank"' in bob_row
    # the rule behind it all is on the page
    assert str(reps.SUGGEST_MIN_WINS) in page and str(reps.SUGGEST_MIN_LIFT) in page


def test_the_review_is_a_table_that_becomes_cards_on_a_phone(client, org):
    page = text(page_as(client, org.carol, "/routing/reps/"))
    assert 'name="viewport" content="width=device-width' in page
    assert '<table class="leads reps">' in page  # the lead list's responsive table
    cells = re.findall(r"<td[^>]*>", page)
    assert cells and all("data-label=" in cell or "leads__title" in cell for cell in cells)


def test_the_review_speaks_english_when_chosen(client, org):
    client.cookies["django_language"] = "en"
    page = text(page_as(client, org.carol, "/routing/reps/"))
    assert "Specialty tags" in page and "No tags" in page


def test_needs_attention_hides_the_reps_with_nothing_to_say(client, org, east_record):
    customer_make(industry=MED)
    reps.rep_profile_update(actor=org.carol, user=org.bob, specialties=[EQUIP])
    reps.rep_profile_update(actor=org.carol, user=org.alice, specialties=[MED])
    page = text(page_as(client, org.carol, "/routing/reps/?only=flagged"))
    assert f'id="rep-{org.alice.pk}"' not in page and f'id="rep-{org.bob.pk}"' not in page
    assert "没有需要处理的销售" in page


def test_the_review_page_takes_a_fixed_number_of_queries(client, org, east_record, django_assert_num_queries):
    client.force_login(org.director)
    client.get("/routing/reps/")  # the session's first use
    # session, user, then the review's three: reps, the record aggregate, leaves
    with django_assert_num_queries(5):
        assert client.get("/routing/reps/").status_code == 200
    for n in range(5):
        rep = user_make("rep", org.east, username=f"more{n}")
        record(rep, MED, won=1, lost=1)
    with django_assert_num_queries(5):
        page = text(client.get("/routing/reps/"))
    assert "more4" in page


def test_accepting_a_suggestion_tags_the_rep_and_swaps_their_row(client, org, east_record):
    client.force_login(org.carol)
    response = client.post(f"/routing/reps/{org.alice.pk}/tags", {"action": "add", "industry": MED}, **HTMX)
    assert response.status_code == 200
    fragment = text(response)
    assert fragment.lstrip().startswith(f'<tr id="rep-{org.alice.pk}"')  # only the row
    assert "<html" not in fragment
    assert f'<span class="chip chip--open">{MED}</span>' in fragment
    assert RepProfile.objects.get(user=org.alice).specialties == [MED]
    entry = AuditEntry.objects.get(action="routing.rep_profile.update")
    assert entry.actor_id == org.carol.pk and entry.after["specialties"] == [MED]


def test_removing_a_contradicted_tag_from_the_review(client, org):
    record(org.alice, EQUIP, won=1, lost=9)
    record(org.bob, EQUIP, won=8, lost=2)
    reps.rep_profile_update(actor=org.carol, user=org.alice, specialties=[EQUIP])
    client.force_login(org.carol)
    row = text(client.get("/routing/reps/"))
    assert 'data-flag="underperforms"' in row
    response = client.post(f"/routing/reps/{org.alice.pk}/tags", {"action": "remove", "industry": EQUIP})
    assert response.status_code == 302  # without htmx: back to the page, with a message
    assert RepProfile.objects.get(user=org.alice).specialties == []


def test_accepting_an_unknown_industry_answers_with_the_reason_in_the_row(client, org):
    client.force_login(org.carol)
    response = client.post(f"/routing/reps/{org.alice.pk}/tags", {"industry": "不存在"}, **HTMX)
    assert response.status_code == 422
    assert "不存在" in text(response) and "notice--error" in text(response)


def test_accepting_without_an_industry_changes_nothing(client, org):
    client.force_login(org.carol)
    response = client.post(f"/routing/reps/{org.alice.pk}/tags", {"industry": " "}, **HTMX)
    assert response.status_code == 422 and "请选择一个行业" in text(response)
    assert not RepProfile.objects.exists()


def test_a_product_manager_reviews_without_buttons_and_cannot_post(client, org, east_record):
    page = text(page_as(client, org.pm, "/routing/reps/"))
    assert "Alice 王" in page and "erin" in page
    assert "hx-post" not in page
    assert client.post(f"/routing/reps/{org.alice.pk}/tags", {"industry": MED}).status_code == 403
    assert not RepProfile.objects.exists()


# --- one rep's profile ------------------------------------------------------------------------


def test_the_profile_page_shows_the_record_by_industry_and_the_form(client, org, east_record):
    page = text(page_as(client, org.carol, f"/routing/reps/{org.alice.pk}/"))
    assert "路由档案" in page or "分配档案" in page
    assert 'name="specialties"' in page and 'type="time"' in page and 'name="work_days"' in page
    assert f'<option value="{MED}">' in page  # the industries of her record, to pick from
    assert "6 / 8" in page and "2 / 8" in page  # won / closed per industry


def test_a_manager_saves_a_profile_from_the_page(client, org):
    customer_make(industry=MED)
    customer_make(industry=EQUIP)
    client.force_login(org.carol)
    response = client.post(
        f"/routing/reps/{org.alice.pk}/",
        {
            "specialties": f"{MED}，{EQUIP}",
            "max_open_leads": "25",
            "max_new_per_day": "",
            "work_days": ["1", "2", "3"],
            "work_start": "09:00",
            "work_end": "18:30",
        },
    )
    assert response.status_code == 302
    profile = RepProfile.objects.get(user=org.alice)
    assert profile.specialties == [MED, EQUIP]
    assert (profile.max_open_leads, profile.max_new_per_day) == (25, None)
    assert profile.work_days == [1, 2, 3]
    assert (profile.work_start, profile.work_end) == (dt.time(9), dt.time(18, 30))
    page = text(client.get(response["Location"]))
    assert f"{MED}、{EQUIP}" in page and "已保存" in page


def test_refusals_show_beside_their_field_and_nothing_is_saved(client, org):
    client.force_login(org.carol)
    response = client.post(
        f"/routing/reps/{org.alice.pk}/",
        {"specialties": "没有的行业", "max_open_leads": "0", "work_start": "09:00"},
    )
    assert response.status_code == 422
    page = text(response)
    assert page.count('class="field__error"') >= 1
    assert "没有的行业" in page
    assert not RepProfile.objects.exclude(specialties=[]).exists()


def test_a_rep_sees_their_profile_read_only_and_records_their_own_leave(client, org):
    page = text(page_as(client, org.alice, f"/routing/reps/{org.alice.pk}/"))
    assert 'name="specialties"' not in page  # tags, caps and hours are the manager's
    assert 'name="starts_at"' in page
    assert client.post(f"/routing/reps/{org.alice.pk}/", {"max_open_leads": "999"}).status_code == 403
    starts = clock.now().astimezone(clock.org_tz()) + dt.timedelta(days=1)
    response = client.post(
        f"/routing/reps/{org.alice.pk}/leaves/",
        {
            "starts_at": starts.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (starts + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
            "reason": "年假",
        },
    )
    assert response.status_code == 302
    leave = Leave.objects.get(user=org.alice)
    # the form's local time is the organisation's (Asia/Shanghai)
    assert leave.starts_at == starts.replace(second=0, microsecond=0)
    assert "年假" in text(client.get(f"/routing/reps/{org.alice.pk}/"))
    response = client.post(f"/routing/reps/{org.alice.pk}/leaves/{leave.pk}/delete")
    assert response.status_code == 302 and not Leave.objects.exists()


def test_an_impossible_leave_is_refused_on_the_page(client, org):
    client.force_login(org.carol)
    starts = clock.now().astimezone(clock.org_tz()) + dt.timedelta(days=2)
    response = client.post(
        f"/routing/reps/{org.alice.pk}/leaves/",
        {
            "starts_at": starts.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (starts - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert response.status_code == 422
    assert "field--invalid" in text(response)
    assert not Leave.objects.exists()


def test_another_reps_leave_cannot_be_withdrawn_through_ones_own_url(client, org):
    now = clock.now()
    leave = reps.leave_create(actor=org.bob, user=org.bob, starts_at=now, ends_at=now + dt.timedelta(days=1))
    client.force_login(org.alice)
    assert client.post(f"/routing/reps/{org.alice.pk}/leaves/{leave.pk}/delete").status_code == 404
    assert Leave.objects.filter(pk=leave.pk).exists()
