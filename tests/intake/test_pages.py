"""The intake pages (SPEC C1): dashboard, channels, dead letters with retry, merges, a lead's merge
state and arrivals — through real HTTP, with the data real deliveries (`signed_post`) produce."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest
from django.conf import settings
from django.test import Client

from salesloop.core.models import AuditEntry, PersonalDataAccess
from salesloop.crm.models import Lead
from salesloop.intake.models import EventStatus, InboundEvent, MergeSuggestion, Source
from salesloop.intake.services import source_create
from tests import browsing as e2e
from tests.intake.conftest import SECRET, clue, signed_post

pytestmark = pytest.mark.django_db


HTMX = {"HTTP_HX_REQUEST": "true"}


def text(response) -> str:
    return unescape(response.content.decode())


def event_ids(response) -> list[int]:
    return [int(i) for i in re.findall(r'href="/intake/events/(\d+)/"', response.content.decode())]


@pytest.fixture
def deliveries(client, douyin):
    """The 82% kind of campaign: five arrivals of 618大促, four of them one person; one of 双11; one
    with a phone that is no phone."""
    outcomes = [signed_post(client, douyin, clue(n, phone="13800138000")).json() for n in range(4)]
    outcomes.append(signed_post(client, douyin, clue(9, phone="13800138009", ad_name="双11")).json())
    outcomes.append(signed_post(client, douyin, clue(10, phone="bad")).json())
    return outcomes


@pytest.fixture
def failed_event(deliveries) -> InboundEvent:
    return InboundEvent.objects.get(pk=deliveries[-1]["event_id"])


# --- who gets in ------------------------------------------------------------------------------

PAGES = [
    "/intake/",
    "/intake/sources/",
    "/intake/sources/new",
    "/intake/sources/{source}/",
    "/intake/events/?status=failed",
    "/intake/events/{event}/",
    "/intake/merges/",
    "/intake/leads/{lead}/merge/",
]


def _fill(path: str, failed_event: InboundEvent, lead: Lead) -> str:
    return path.format(source=failed_event.source_id, event=failed_event.pk, lead=lead.pk)


@pytest.mark.parametrize("path", [*PAGES, "/intake/leads/{lead}/arrivals/"])
def test_it_sends_anonymous_visitors_to_login(client, org, failed_event, path):
    lead = Lead.objects.first()
    url = _fill(path, failed_event, lead)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_anonymous_posts_change_nothing(client, org, failed_event):
    response = client.post(f"/intake/events/{failed_event.pk}/retry")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert InboundEvent.objects.get(pk=failed_event.pk).attempts == 1


@pytest.mark.parametrize("path", PAGES)
def test_reps_are_refused_the_intake_pages(client, org, failed_event, path):
    lead = Lead.objects.first()
    Lead.objects.filter(pk=lead.pk).update(owner=org.alice)  # even a lead of her own
    client.force_login(org.alice)
    assert client.get(_fill(path, failed_event, lead)).status_code == 403


@pytest.mark.parametrize("persona", ["carol", "director", "pm", "admin"])
def test_the_top_bar_links_intake_for_everyone_but_reps(client, org, persona):
    client.force_login(getattr(org, persona))
    assert 'href="/intake/"' in client.get("/").content.decode()
    client.force_login(org.alice)
    assert 'href="/intake/"' not in client.get("/").content.decode()


def test_the_sub_navigation_links_every_intake_page(client, org):
    client.force_login(org.carol)
    body = client.get("/intake/").content.decode()
    for href in (
        "/intake/",
        "/intake/sources/",
        "/intake/events/?status=failed",
        "/intake/merges/",
        "/intake/cards/",
        "/intake/imports/",
    ):
        assert f'href="{href}"' in body
    assert "线索入口" in body and "失败事件" in body  # Chinese by default


# --- dashboard --------------------------------------------------------------------------------


def test_dashboard_counts_what_the_deliveries_produced(client, org, douyin, deliveries):
    client.force_login(org.carol)
    response = client.get("/intake/")
    assert response.status_code == 200
    row = next(r for r in response.context["counts"] if r.source.pk == douyin.pk)
    assert row.today == {"received": 6, "created": 2, "touch": 3, "failed": 1}
    assert row.days30 == row.today
    # the failed count links to that channel's dead letters
    assert f"/intake/events/?status=failed&amp;source={douyin.pk}" in response.content.decode()


def test_dashboard_draws_duplicate_rates_with_an_alarm_above_half(client, org, douyin, deliveries):
    client.force_login(org.director)
    response = client.get("/intake/")
    bars = {bar.campaign: bar for bar in response.context["bars"]}
    assert (bars["618大促"].percent, bars["618大促"].width, bars["618大促"].alarm) == ("75%", "75.0%", True)
    assert (bars["双11"].percent, bars["双11"].alarm) == ("0%", False)
    body = text(response)
    assert 'style="width: 75.0%"' in body
    assert "3 次回流 / 1 条新建" in body  # the numbers beside the bar
    assert body.count("bars__row--alarm") == 1


def test_dashboard_period_selects_the_window_and_swaps_only_the_report(client, org, douyin, deliveries):
    # given the 双11 arrival happened ten days ago
    ten_days_ago = InboundEvent.objects.get(pk=deliveries[4]["event_id"]).received_at - dt.timedelta(days=10)
    InboundEvent.objects.filter(pk=deliveries[4]["event_id"]).update(received_at=ten_days_ago)
    client.force_login(org.carol)
    week = client.get("/intake/?days=7", HTTP_HX_TARGET="duplicate-report", **HTMX)
    assert week.status_code == 200
    assert {bar.campaign for bar in week.context["bars"]} == {"618大促"}
    assert "<html" not in week.content.decode() and 'id="duplicate-report"' in week.content.decode()
    month = client.get("/intake/?days=30")
    assert "双11" in {bar.campaign for bar in month.context["bars"]}
    wrong = client.get("/intake/?days=8")
    assert wrong.status_code == 400 and "请选择 7、30 或 90 天" in text(wrong)


def test_dashboard_takes_a_fixed_number_of_queries(
    client, org, douyin, deliveries, django_assert_num_queries
):
    client.force_login(org.carol)
    client.get("/intake/")  # warm the session and the content types
    with django_assert_num_queries(5):  # session, user, counts, sources, duplicates
        client.get("/intake/")
    # more channels, campaigns and events cost nothing more
    other = source_create(actor=None, kind="call_400", name="400热线", secret=SECRET)
    for n in range(5):
        signed_post(client, douyin, clue(100 + n, phone=f"1380013810{n}", ad_name=f"活动{n}"))
        signed_post(client, other, {"call_id": f"c{n}", "caller": f"1390013900{n}"})
    with django_assert_num_queries(5):
        client.get("/intake/")


# --- channels ---------------------------------------------------------------------------------


def test_channel_list_shows_every_channel_and_only_admins_may_add(client, org, douyin, web_form):
    client.force_login(org.carol)
    body = text(client.get("/intake/sources/"))
    assert "抖音-618活动" in body and "官网咨询" in body and f"/hooks/{douyin.slug}" in body
    assert "/intake/sources/new" not in body
    client.force_login(org.admin)
    assert "/intake/sources/new" in text(client.get("/intake/sources/"))


def test_creating_a_channel_shows_its_secret_once(client, org):
    client.force_login(org.carol)
    assert client.get("/intake/sources/new").status_code == 403
    client.force_login(org.admin)
    response = client.post("/intake/sources/new", {"kind": "douyin", "name": "抖音-双11", "enabled": "on"})
    assert response.status_code == 302
    source = Source.objects.get(name="抖音-双11")
    assert len(source.secret) >= 32 and source.enabled
    shown = text(client.get(response["Location"]))
    assert source.secret in shown and f"{settings.SITE_URL}/hooks/{source.slug}" in shown
    again = text(client.get(response["Location"]))
    assert source.secret not in again and "已设置" in again
    assert AuditEntry.objects.filter(action="source.create", actor=org.admin).exists()


def test_a_wecom_channel_without_its_keys_is_refused_by_field(client, org):
    client.force_login(org.admin)
    response = client.post("/intake/sources/new", {"kind": "wecom", "name": "企微客服"})
    assert response.status_code == 422
    assert "企业微信渠道需要回调 Token" in text(response)
    assert 'class="field field--invalid' in response.content.decode()
    assert not Source.objects.filter(name="企微客服").exists()


def test_rotating_a_secret_shows_the_new_one_once(client, org, douyin):
    client.force_login(org.admin)
    response = client.post(f"/intake/sources/{douyin.pk}/secret")
    assert response.status_code == 302
    douyin.refresh_from_db()
    assert douyin.secret != SECRET
    assert douyin.secret in text(client.get(response["Location"]))
    assert douyin.secret not in text(client.get(response["Location"]))
    client.force_login(org.director)
    assert client.post(f"/intake/sources/{douyin.pk}/secret").status_code == 403


def test_a_web_form_channel_gives_its_form_url_and_embed_code(client, org, web_form):
    client.force_login(org.admin)
    body = text(client.get(f"/intake/sources/{web_form.pk}/"))
    form_url = f"{settings.SITE_URL}/f/{web_form.slug}"
    assert form_url in body
    assert f'<iframe src="{form_url}"' in body  # escaped in the page, to copy as text
    assert f"/intake/sources/{web_form.pk}/secret" not in body  # an open form has no secret to rotate


def test_channel_page_is_read_only_for_managers_and_missing_is_404(client, org, douyin):
    client.force_login(org.carol)
    response = client.get(f"/intake/sources/{douyin.pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="map.phone"' not in body and "telephone" in body  # the default path, not an input
    assert client.post(f"/intake/sources/{douyin.pk}/", {"name": "x"}).status_code == 403
    assert client.get("/intake/sources/987654/").status_code == 404


def test_channel_page_lists_its_last_five_events(client, org, douyin, deliveries):
    client.force_login(org.admin)
    response = client.get(f"/intake/sources/{douyin.pk}/")
    newest_five = [o["event_id"] for o in reversed(deliveries)][:5]
    assert event_ids(response) == newest_five


def _settings_post(source: Source, **mapping: str) -> dict[str, str]:
    post = {"name": source.name, "enabled": "on", "default_campaign": "", "pipeline": ""}
    post.update({f"map.{field}": path for field, path in mapping.items()})
    return post


def test_saving_a_mapping_fix(client, org, douyin):
    client.force_login(org.admin)
    response = client.post(f"/intake/sources/{douyin.pk}/", _settings_post(douyin, phone="mobile", city="-"))
    assert response.status_code == 302
    douyin.refresh_from_db()
    assert douyin.field_mapping == {"phone": "mobile", "city": ""}
    page = client.get(f"/intake/sources/{douyin.pk}/").content.decode()
    assert 'name="map.phone" value="mobile"' in page and 'name="map.city" value="-"' in page
    entry = AuditEntry.objects.get(action="source.update")
    assert entry.after["field_mapping"] == {"phone": "mobile", "city": ""}


@pytest.mark.parametrize(
    ("mapping", "shown"),
    [
        ({"phone": "x" * 201}, "<code>field_mapping.phone</code>"),
        ({"fone": "mobile"}, "field_mapping.fone"),
    ],
)
def test_a_mapping_error_is_shown_by_field_and_nothing_is_saved(client, org, douyin, mapping, shown):
    client.force_login(org.admin)
    response = client.post(f"/intake/sources/{douyin.pk}/", _settings_post(douyin, **mapping))
    assert response.status_code == 422
    assert shown in response.content.decode()
    douyin.refresh_from_db()
    assert douyin.field_mapping == {}


def test_a_phone_path_error_sits_on_the_phone_row(client, org, douyin):
    client.force_login(org.admin)
    response = client.post(f"/intake/sources/{douyin.pk}/", _settings_post(douyin, phone="x" * 201))
    row = next(r for r in response.context["mapping_rows"] if r.field == "phone")
    assert "200" in row.error
    assert all(not r.error for r in response.context["mapping_rows"] if r.field != "phone")


# --- dead letters -----------------------------------------------------------------------------


def test_dead_letters_list_failed_events_with_the_reason(client, org, douyin, deliveries, failed_event):
    client.force_login(org.admin)
    response = client.get("/intake/events/?status=failed")
    assert response.status_code == 200
    assert event_ids(response) == [failed_event.pk]
    body = text(response)
    assert failed_event.error in body and "clue-10" in body and "抖音-618活动" in body
    everything = client.get("/intake/events/")
    assert len(event_ids(everything)) == 6


def test_dead_letters_filter_by_channel(client, org, douyin, call400, deliveries, failed_event):
    other = signed_post(client, call400, {"call_id": "c1", "caller": "123"}).json()
    client.force_login(org.director)
    assert event_ids(client.get(f"/intake/events/?status=failed&source={douyin.pk}")) == [failed_event.pk]
    assert event_ids(client.get(f"/intake/events/?status=failed&source={call400.pk}")) == [other["event_id"]]
    assert client.get("/intake/events/?status=nope").status_code == 400


def test_dead_letters_show_the_time_in_beijing(client, org, failed_event):
    InboundEvent.objects.filter(pk=failed_event.pk).update(
        received_at=dt.datetime(2026, 3, 1, 17, 30, tzinfo=dt.UTC)
    )
    client.force_login(org.admin)
    assert "2026-03-02 01:30:00" in text(client.get("/intake/events/?status=failed"))


def test_a_manager_sees_no_dead_letters_they_cannot_place(client, org, failed_event):
    # failed events carry no lead, so no region: they are for directors and admins
    client.force_login(org.carol)
    response = client.get("/intake/events/?status=failed")
    assert response.status_code == 200 and event_ids(response) == []
    assert client.get(f"/intake/events/{failed_event.pk}/").status_code == 404


def test_dead_letters_page_by_keyset(client, org, douyin, settings):
    settings.SALESLOOP_PAGE_SIZE = 2
    failed = [signed_post(client, douyin, clue(n, phone="0")).json()["event_id"] for n in range(5)]
    client.force_login(org.admin)
    first = client.get("/intake/events/?status=failed")
    assert event_ids(first) == failed[::-1][:2]
    next_url = unescape(re.search(r'rel="next" href="([^"]+)"', first.content.decode())[1])
    assert "status=failed" in next_url
    assert event_ids(client.get(next_url)) == failed[::-1][2:4]
    assert client.get("/intake/events/?status=failed&cursor=garbage").status_code == 400


def test_dead_letters_take_a_fixed_number_of_queries(client, org, douyin, django_assert_num_queries):
    for n in range(3):
        signed_post(client, douyin, clue(n, phone="0"))
    client.force_login(org.admin)
    client.get("/intake/events/?status=failed")
    with django_assert_num_queries(4):  # session, user, channels for the filter, the page
        client.get("/intake/events/?status=failed")
    for n in range(3, 12):
        signed_post(client, douyin, clue(n, phone="0"))
    with django_assert_num_queries(4):
        response = client.get("/intake/events/?status=failed")
    assert len(event_ids(response)) == 12


def test_event_page_shows_the_raw_body_and_logs_the_view(client, org, failed_event):
    client.force_login(org.director)
    response = client.get(f"/intake/events/{failed_event.pk}/")
    assert response.status_code == 200
    body = text(response)
    assert '"clue_id": "clue-10"' in body  # pretty-printed JSON
    assert '"X-Salesloop-Signature"' in body  # the headers kept
    access = PersonalDataAccess.objects.get()
    assert (access.actor, access.subject_type, access.subject_id, access.fields, access.channel) == (
        org.director,
        "intake.inboundevent",
        str(failed_event.pk),
        ["body"],
        "page",
    )


def test_event_page_keeps_a_body_that_is_not_json_as_it_came(client, org, douyin):
    event_id = signed_post(client, douyin, None, raw=b"<xml>not json</xml>").json()["event_id"]
    client.force_login(org.admin)
    assert "<xml>not json</xml>" in text(client.get(f"/intake/events/{event_id}/"))


@pytest.mark.parametrize(("persona", "has_button"), [("admin", True), ("director", True), ("pm", False)])
def test_only_admins_and_directors_get_the_retry_button(client, org, failed_event, persona, has_button):
    client.force_login(getattr(org, persona))
    body = client.get(f"/intake/events/{failed_event.pk}/").content.decode()
    assert (f"/intake/events/{failed_event.pk}/retry" in body) is has_button


def test_retry_after_the_mapping_fix_turns_a_dead_letter_into_a_lead(client, org, douyin):
    # given a campaign whose form calls the phone field "mobile"
    payload = clue(1)
    payload["mobile"] = payload.pop("telephone")
    failed = signed_post(client, douyin, payload).json()
    assert failed["status"] == "failed"
    client.force_login(org.admin)
    # when the admin fixes the mapping on the channel page and presses 重试
    client.post(f"/intake/sources/{douyin.pk}/", _settings_post(douyin, phone="mobile"))
    response = client.post(
        f"/intake/events/{failed['event_id']}/retry", HTTP_HX_TARGET="event-status", **HTMX
    )
    # then the status panel says it became a lead, and what was read replaces the old panel
    assert response.status_code == 200
    event = InboundEvent.objects.get(pk=failed["event_id"])
    assert (event.status, event.attempts) == (EventStatus.CREATED, 2)
    fragment = text(response)
    assert fragment.lstrip().startswith('<section id="event-status"')
    assert "新线索" in fragment and f"/leads/{event.lead_id}/" in fragment
    assert (
        'id="event-normalised" class="card" aria-labelledby="normalised-title" hx-swap-oob="true"' in fragment
    )
    assert "/retry" not in fragment  # processed: no button any more
    assert AuditEntry.objects.filter(action="event.retry", actor=org.admin).exists()
    # and retrying it again is refused, said in the panel
    again = client.post(f"/intake/events/{failed['event_id']}/retry", **HTMX)
    assert again.status_code == 422 and "只有失败的事件可以重试" in text(again)


def test_retry_without_htmx_goes_back_to_the_event(client, org, failed_event):
    client.force_login(org.director)
    response = client.post(f"/intake/events/{failed_event.pk}/retry")
    assert response.status_code == 302 and response["Location"] == f"/intake/events/{failed_event.pk}/"
    assert InboundEvent.objects.get(pk=failed_event.pk).attempts == 2  # still failing: the phone is bad


def test_retry_is_403_for_those_who_may_look_and_404_out_of_scope(client, org, failed_event):
    client.force_login(org.pm)
    assert client.post(f"/intake/events/{failed_event.pk}/retry").status_code == 403
    client.force_login(org.carol)
    assert client.post(f"/intake/events/{failed_event.pk}/retry").status_code == 404
    assert InboundEvent.objects.get(pk=failed_event.pk).attempts == 1


# --- merges -----------------------------------------------------------------------------------


@pytest.fixture
def look_alikes(client, douyin):
    """Two people of one Shanghai company with alike names, arriving as two leads in 华东's pool."""
    company = {"remark_dict": {"公司名称": "上海云帆科技有限公司"}, "province_name": "上海"}
    first = signed_post(client, douyin, clue(1, phone="13900000001", name="张伟", **company)).json()
    second = signed_post(client, douyin, clue(2, phone="13900000002", name="张伟", **company)).json()
    suggestion = MergeSuggestion.objects.get()
    assert (suggestion.lead_id, suggestion.candidate_id) == (second["lead_id"], first["lead_id"])
    return suggestion


def test_merge_suggestions_show_both_leads_masked_with_the_reasons(client, org, look_alikes):
    client.force_login(org.carol)
    response = client.get("/intake/merges/")
    assert response.status_code == 200
    body = text(response)
    assert "139****0001" in body and "139****0002" in body
    assert "13900000001" not in body
    assert "同一公司" in body and "联系人姓名相似度 100%" in body and "同姓（张）" in body
    assert f"/intake/merges/{look_alikes.pk}/merge" in body and "不是同一人" in body


def test_merge_suggestions_are_scoped_and_only_judges_get_buttons(client, org, look_alikes):
    client.force_login(org.dave)  # 华南: neither lead is his
    assert "139****0001" not in text(client.get("/intake/merges/"))
    assert client.post(f"/intake/merges/{look_alikes.pk}/merge").status_code == 404
    client.force_login(org.pm)
    body = text(client.get("/intake/merges/"))
    assert "139****0001" in body and f"/intake/merges/{look_alikes.pk}/merge" not in body
    assert client.post(f"/intake/merges/{look_alikes.pk}/dismiss").status_code == 403
    assert MergeSuggestion.objects.get().status == MergeSuggestion.Status.OPEN


def test_merge_list_takes_a_fixed_number_of_queries(
    client, org, douyin, look_alikes, django_assert_num_queries
):
    client.force_login(org.carol)
    client.get("/intake/merges/")
    # session, user, the page of pairs with leads and contacts, then customers and stages of each side
    with django_assert_num_queries(7):
        client.get("/intake/merges/")
    company = {"remark_dict": {"公司名称": "上海云帆科技有限公司"}, "province_name": "上海"}
    for n in range(3, 6):
        signed_post(client, douyin, clue(n, phone=f"1390000000{n}", name="张伟", **company))
    assert MergeSuggestion.objects.count() >= 4
    with django_assert_num_queries(7):
        client.get("/intake/merges/")


def test_merging_keeps_the_chosen_lead_and_is_audited(client, org, look_alikes):
    client.force_login(org.carol)
    response = client.post(
        f"/intake/merges/{look_alikes.pk}/merge",
        {"survivor": "lead"},
        HTTP_HX_TARGET=f"suggestion-{look_alikes.pk}",
        **HTMX,
    )
    assert response.status_code == 200
    assert f'id="suggestion-{look_alikes.pk}"' in response.content.decode()
    merged = Lead.objects.get(pk=look_alikes.candidate_id)
    assert merged.merged_into_id == look_alikes.lead_id
    assert MergeSuggestion.objects.get().status == MergeSuggestion.Status.MERGED
    entry = AuditEntry.objects.get(action="lead.merge")
    assert (entry.actor, entry.target_id, entry.after) == (
        org.carol,
        str(merged.pk),
        {"merged_into": look_alikes.lead_id},
    )
    # the merged lead leaves the lists
    assert f'href="/leads/{merged.pk}/"' not in client.get("/leads/").content.decode()


def test_dismissing_keeps_both_leads_and_is_audited(client, org, look_alikes):
    client.force_login(org.director)
    response = client.post(f"/intake/merges/{look_alikes.pk}/dismiss")
    assert response.status_code == 302 and response["Location"] == "/intake/merges/"
    assert MergeSuggestion.objects.get().status == MergeSuggestion.Status.DISMISSED
    assert not Lead.objects.filter(merged_into__isnull=False).exists()
    entry = AuditEntry.objects.get(action="merge_suggestion.dismiss")
    assert (entry.actor, entry.target_type, entry.target_id) == (
        org.director,
        "intake.mergesuggestion",
        str(look_alikes.pk),
    )
    # judged once: the list is empty and the same pair cannot be judged again
    assert "139****0001" not in text(client.get("/intake/merges/"))
    assert client.post(f"/intake/merges/{look_alikes.pk}/dismiss").status_code == 404


def test_unmerge_restores_the_lead_to_lists(client, org, look_alikes):
    client.force_login(org.carol)
    client.post(f"/intake/merges/{look_alikes.pk}/merge", {"survivor": "candidate"})
    survivor, merged = look_alikes.candidate_id, look_alikes.lead_id
    # the survivor's merge page names the merged lead, with an un-merge button
    page = client.get(f"/intake/leads/{survivor}/merge/")
    assert page.status_code == 200
    assert f"/intake/leads/{merged}/unmerge" in page.content.decode()
    assert f"#{merged} 已并入 #{survivor}" in text(page)
    # the merged lead's own page says where it went
    assert f"已并入 #{survivor}" in text(client.get(f"/intake/leads/{merged}/merge/"))
    # when un-merged
    response = client.post(
        f"/intake/leads/{merged}/unmerge", {"shown": str(survivor), "reason": "不是同一人"}
    )
    assert response.status_code == 302 and response["Location"] == f"/intake/leads/{survivor}/merge/"
    assert Lead.objects.get(pk=merged).merged_into_id is None
    assert f'href="/leads/{merged}/"' in client.get("/leads/").content.decode()
    entry = AuditEntry.objects.get(action="lead.unmerge")
    assert (entry.actor, entry.reason) == (org.carol, "不是同一人")
    assert f"#{merged} 已从 #{survivor} 拆分" in text(client.get(f"/intake/leads/{survivor}/merge/"))


def test_lead_merge_page_scope(client, org, look_alikes):
    client.force_login(org.dave)
    assert client.get(f"/intake/leads/{look_alikes.lead_id}/merge/").status_code == 404
    assert client.post(f"/intake/leads/{look_alikes.lead_id}/unmerge").status_code == 404
    client.force_login(org.pm)
    page = client.get(f"/intake/leads/{look_alikes.lead_id}/merge/")
    assert page.status_code == 200 and "未与其他线索合并" in text(page)


# --- arrivals ---------------------------------------------------------------------------------


@pytest.fixture
def called_lead(client, org, call400) -> Lead:
    """A 400 call, then the same caller again a day later (回流); assigned to alice two hours in."""
    first = signed_post(
        client,
        call400,
        {"call_id": "c-1", "caller": "02188886666", "transcript": "您好，我们想采购一批工业设备。"},
    ).json()
    signed_post(client, call400, {"call_id": "c-2", "caller": "02188886666", "transcript": "再次来电询价"})
    lead = Lead.objects.get(pk=first["lead_id"])
    Lead.objects.filter(pk=lead.pk).update(
        owner=org.alice, assigned_at=lead.created_at + dt.timedelta(hours=2)
    )
    return Lead.objects.get(pk=lead.pk)


def test_arrivals_fragment_shows_arrival_assignment_and_each_touch(client, org, called_lead):
    client.force_login(org.alice)  # the rep who owns it: arrivals are part of the lead page
    response = client.get(f"/intake/leads/{called_lead.pk}/arrivals/", **HTMX)
    assert response.status_code == 200
    body = text(response)
    assert "<html" not in body and body.lstrip().startswith('<section id="lead-arrivals"')
    assert "2\xa0小时" in body  # assigned two hours after it arrived
    assert body.count("<details") == 2 and "您好，我们想采购一批工业设备。" in body
    assert "新线索" in body and "回流" in body and "400热线" in body
    full = client.get(f"/intake/leads/{called_lead.pk}/arrivals/")
    assert "<html" in full.content.decode()


def test_arrivals_of_a_pool_lead_say_it_is_waiting(client, org, called_lead):
    Lead.objects.filter(pk=called_lead.pk).update(owner=None, assigned_at=None, region=org.east)
    client.force_login(org.carol)
    assert "待分配" in text(client.get(f"/intake/leads/{called_lead.pk}/arrivals/", **HTMX))


def test_arrivals_are_404_out_of_scope(client, org, called_lead):
    client.force_login(org.bob)
    assert client.get(f"/intake/leads/{called_lead.pk}/arrivals/").status_code == 404
    client.force_login(org.dave)
    assert client.get(f"/intake/leads/{called_lead.pk}/arrivals/").status_code == 404


# --- in a real browser, on a phone ------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_on_a_phone_an_admin_fixes_the_mapping_retries_and_merges(
    browser, live_server, transactional_db, org, douyin
):
    # given a dead letter (the form calls the phone "mobile") and two look-alike leads
    payload = clue(1)
    payload["mobile"] = payload.pop("telephone")
    failed = signed_post(Client(), douyin, payload).json()
    company = {"remark_dict": {"公司名称": "上海云帆科技有限公司"}, "province_name": "上海"}
    signed_post(Client(), douyin, clue(2, phone="13900000001", name="张伟", **company))
    signed_post(Client(), douyin, clue(3, phone="13900000002", name="张伟", **company))
    page = browser.new_page(viewport=e2e.PHONE)
    broken = e2e.watch_for_broken_assets(page)
    base = live_server.url
    e2e.log_in(page, base, "admin")
    # when the admin opens intake from the top bar and fixes the channel's mapping
    page.get_by_role("link", name="线索入口").click()
    page.wait_for_url(f"{base}/intake/")
    page.goto(f"{base}/intake/sources/{douyin.pk}/")
    page.fill('input[name="map.phone"]', "mobile")
    page.get_by_role("button", name="保存").click()
    page.wait_for_selector(".notice--success")
    # and presses 重试 on the dead letter: htmx swaps the status panel in place
    page.goto(f"{base}/intake/events/?status=failed")
    page.click(f'a[href="/intake/events/{failed["event_id"]}/"]')
    page.get_by_role("button", name="重试").click()
    page.wait_for_selector("#event-status .notice--success")
    assert "新线索" in page.inner_text("#event-status")
    assert '"phone": "13800138000"' in page.inner_text("#event-normalised")  # swapped out of band
    # and merges the look-alikes
    page.goto(f"{base}/intake/merges/")
    page.get_by_role("button", name="合并").click()
    page.wait_for_selector(".pair--done")
    assert "已合并" in page.inner_text(".pair--done")
    # then nothing is wider than the phone and every asset loaded
    for path in ("/intake/", "/intake/events/", f"/intake/sources/{douyin.pk}/"):
        page.goto(base + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= e2e.PHONE["width"], path
    assert broken == []
    assert Lead.objects.filter(merged_into__isnull=False).count() == 1


class TestReferralPage:
    def test_a_rep_records_a_referral_from_her_customer_and_owns_the_lead(self, client, org):
        from salesloop.crm.models import Lead
        from tests.factories import lead_make

        existing = lead_make(owner=org.alice)
        client.force_login(org.alice)
        detail = client.get(f"/leads/{existing.pk}/")
        assert f"/intake/customers/{existing.customer_id}/referral/" in detail.content.decode()
        page = client.get(f"/intake/customers/{existing.customer_id}/referral/")
        assert page.status_code == 200
        response = client.post(
            f"/intake/customers/{existing.customer_id}/referral/",
            {"name": "周芷若", "phone": "13712345678", "company": "峨眉医疗"},
        )
        lead = Lead.objects.exclude(pk=existing.pk).get()
        assert response.status_code == 302 and response["Location"] == f"/leads/{lead.pk}/"
        assert (lead.referred_by_id, lead.owner, lead.source) == (existing.customer_id, org.alice, "referral")

    def test_problems_are_named_and_nothing_is_created(self, client, org):
        from salesloop.crm.models import Lead
        from tests.factories import lead_make

        existing = lead_make(owner=org.alice)
        client.force_login(org.alice)
        response = client.post(
            f"/intake/customers/{existing.customer_id}/referral/", {"name": "x", "phone": "123"}
        )
        assert response.status_code == 422
        assert Lead.objects.count() == 1
        missing = client.post(f"/intake/customers/{existing.customer_id}/referral/", {"name": "x"})
        assert missing.status_code == 422

    def test_out_of_scope_customer_is_404_and_pm_403(self, client, org):
        from tests.factories import lead_make

        hidden = lead_make(owner=org.bob)
        client.force_login(org.alice)
        assert client.get(f"/intake/customers/{hidden.customer_id}/referral/").status_code == 404
        client.force_login(org.pm)
        assert client.get(f"/intake/customers/{hidden.customer_id}/referral/").status_code == 403
