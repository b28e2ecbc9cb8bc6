"""The lead pages: home, list, detail and the stage-move form, through real HTTP (test client)."""

from __future__ import annotations

import re
from decimal import Decimal
from html import unescape
from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse

from salesloop.core.models import PersonalDataAccess
from salesloop.crm.models import Lead
from salesloop.pipeline.models import Stage
from salesloop.pipeline.services import lead_move_stage
from tests.factories import contact_make, customer_make, lead_make, lead_ready_for

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def stage(code: str) -> Stage:
    return Stage.objects.get(pipeline__is_default=True, code=code)


def page_ids(response) -> list[int]:
    """Lead ids linked from a list page, in page order."""
    return [int(i) for i in re.findall(r'href="/leads/(\d+)/"', response.content.decode())]


def text(response) -> str:
    return unescape(response.content.decode())


def national(e164: str) -> str:
    digits = e164.removeprefix("+86")
    return f"{digits[:3]} {digits[3:7]} {digits[7:]}"


# --- login required ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/leads/", "/leads/1/"])
def test_it_sends_anonymous_visitors_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={path}"


def test_move_endpoint_sends_anonymous_visitors_to_login(client, org):
    lead = lead_make(owner=org.alice)
    response = client.post(reverse("lead-move", args=[lead.pk]), {"stage": "needs_confirmed"})
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert Lead.objects.get(pk=lead.pk).stage.code == "screening"


# --- home ----------------------------------------------------------------------------------


@pytest.fixture
def funnel(org):
    """Open leads spread over stages and people, plus a won and a lost one that must not count."""
    alice_1 = lead_make(owner=org.alice)
    alice_2 = lead_make(owner=org.alice)
    lead_move_stage(actor=org.alice, lead=alice_2, to_stage=stage("needs_confirmed"))
    bobs = lead_ready_for(lead_make(owner=org.bob, province="32"), "solution_demo")
    lead_move_stage(actor=org.bob, lead=bobs, to_stage=stage("solution_demo"))
    erins = lead_make(owner=org.erin, province="44")
    won = lead_ready_for(lead_make(owner=org.alice), "contract_signed")
    lead_move_stage(actor=org.alice, lead=won, to_stage=stage("contract_signed"), status="won")
    lost = lead_make(owner=org.alice)
    lead_move_stage(actor=org.alice, lead=lost, status="lost", reason="预算取消")
    return {"alice_1": alice_1, "alice_2": alice_2, "bob": bobs, "erin": erins}


def stage_counts(response) -> dict[str, int]:
    return {card.label: card.count for card in response.context["stage_cards"]}


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("alice", {"初筛": 1, "需求确认": 1, "方案演示": 0, "报价谈判": 0, "合同签署": 0}),
        ("bob", {"初筛": 0, "需求确认": 0, "方案演示": 1, "报价谈判": 0, "合同签署": 0}),
        ("carol", {"初筛": 1, "需求确认": 1, "方案演示": 1, "报价谈判": 0, "合同签署": 0}),
        ("dave", {"初筛": 1, "需求确认": 0, "方案演示": 0, "报价谈判": 0, "合同签署": 0}),
        ("director", {"初筛": 2, "需求确认": 1, "方案演示": 1, "报价谈判": 0, "合同签署": 0}),
    ],
)
def test_home_counts_open_leads_per_stage_in_the_viewers_scope(client, org, funnel, persona, expected):
    client.force_login(getattr(org, persona))
    response = client.get("/")
    assert response.status_code == 200
    assert stage_counts(response) == expected


def test_home_stage_cards_link_to_the_open_leads_of_that_stage(client, org, funnel):
    client.force_login(org.carol)
    response = client.get("/")
    card = next(c for c in response.context["stage_cards"] if c.label == "需求确认")
    assert card.url == "/leads/?stage=needs_confirmed&status=open"
    listed = client.get(card.url)
    assert page_ids(listed) == [funnel["alice_2"].pk]


def test_home_greets_the_user_with_name_role_and_latest_leads(client, org, funnel):
    client.force_login(org.alice)
    body = text(client.get("/"))
    assert "Alice 王" in body
    assert "销售" in body
    assert funnel["alice_1"].title in body
    assert funnel["bob"].title not in body  # not hers


# --- lead list -----------------------------------------------------------------------------


def test_list_shows_only_the_viewers_leads(client, org):
    alices = lead_make(owner=org.alice)
    bobs = lead_make(owner=org.bob)
    client.force_login(org.bob)
    response = client.get("/leads/")
    assert response.status_code == 200
    assert page_ids(response) == [bobs.pk]
    assert alices.title not in text(response)


def test_list_filters_each_narrow_the_leads(client, org):
    # given leads that differ in one respect each
    screening = lead_make(owner=org.alice, source="douyin", campaign="春季")
    moved = lead_ready_for(lead_make(owner=org.alice, source="web_form"), "quote_negotiation")
    lead_move_stage(actor=org.alice, lead=moved, to_stage=stage("quote_negotiation"))
    bobs = lead_make(owner=org.bob, source="web_form")
    pool = lead_make(owner=None, province="33", source="card")
    lost = lead_make(owner=org.bob, source="web_form")
    lead_move_stage(actor=org.bob, lead=lost, status="lost", reason="选了竞品")
    named = lead_make(owner=org.alice, customer=customer_make(name="杭州新能源汽车有限公司"))
    south = lead_make(owner=org.erin, province="44")
    client.force_login(org.carol)

    def ids(query: str) -> set[int]:
        response = client.get(f"/leads/?{query}")
        assert response.status_code == 200, text(response)
        return set(page_ids(response))

    # then
    assert ids("") == {screening.pk, moved.pk, bobs.pk, pool.pk, lost.pk, named.pk}
    assert ids("stage=quote_negotiation") == {moved.pk}
    assert ids("status=lost") == {lost.pk}
    assert ids("source=douyin") == {screening.pk}
    assert ids(f"owner={org.bob.pk}") == {bobs.pk, lost.pk}
    assert ids("owner=none") == {pool.pk}
    assert ids("q=新能源") == {named.pk}
    assert ids("source=web_form&status=open") == {moved.pk, bobs.pk, named.pk}
    # the director alone filters by region
    client.force_login(org.director)
    assert ids(f"region={org.south.pk}") == {south.pk}


def test_rep_gets_no_owner_filter_and_manager_no_region_filter(client, org):
    client.force_login(org.alice)
    form = client.get("/leads/").context["form"]
    assert "owner" not in form.fields
    assert "region" not in form.fields
    client.force_login(org.carol)
    form = client.get("/leads/").context["form"]
    owners = {label for _, label in form.fields["owner"].choices}
    assert {"Alice 王", "bob", "carol"} <= owners
    assert "erin" not in owners  # not of her region
    assert "region" not in form.fields
    client.force_login(org.director)
    assert "region" in client.get("/leads/").context["form"].fields


def test_walking_next_links_visits_every_lead_once(client, org, settings):
    settings.SALESLOOP_PAGE_SIZE = 3
    mine = {lead_make(owner=org.alice).pk for _ in range(8)}
    lead_make(owner=org.bob)  # out of alice's scope
    client.force_login(org.alice)

    seen: list[int] = []
    url = "/leads/?source=web_form"
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        seen += page_ids(response)
        pages += 1
        if pages > 1:
            assert "回到第一页" not in text(response)  # that is the error notice's link
            assert "第一页" in text(response)
        next_url = response.context["next_url"]
        if next_url:  # the cursor travels with the filters
            assert parse_qs(urlparse(next_url).query)["source"] == ["web_form"]
        url = next_url
    assert pages == 3
    assert sorted(seen) == sorted(mine)
    assert len(seen) == len(set(seen))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("stage=nonsense", "阶段"),
        ("owner=abc", "负责人"),
        ("status=maybe", "状态"),
        ("cursor=not-a-cursor", "分页链接已失效"),
        ("cursor=aWQ6LTE", "分页链接已失效"),  # "id:-1", a well-formed but impossible cursor
    ],
)
def test_bad_filter_values_give_a_message_not_an_error(client, org, query, message):
    lead_make(owner=org.alice)
    client.force_login(org.carol)
    response = client.get(f"/leads/?{query}")
    assert response.status_code == 400
    body = text(response)
    assert "无法按这些条件筛选" in body
    assert message in body


def test_list_answers_htmx_with_the_results_fragment(client, org):
    lead = lead_make(owner=org.alice)
    client.force_login(org.alice)
    response = client.get("/leads/?status=open", HTTP_HX_TARGET="lead-results", **HTMX)
    assert response.status_code == 200
    body = text(response)
    assert body.lstrip().startswith('<section id="lead-results"')
    assert "<html" not in body
    assert page_ids(response) == [lead.pk]
    assert "HX-Request" in response["Vary"]
    # a history restore wants the whole page
    restore = client.get("/leads/", HTTP_HX_HISTORY_RESTORE_REQUEST="true", **HTMX)
    assert "<html" in text(restore)


def test_list_never_shows_a_full_phone_number_nor_logs_access(client, org):
    lead = lead_make(owner=org.alice)
    phone = lead.contact.phone
    client.force_login(org.alice)  # even the owner, who may see it on the detail page
    body = text(client.get("/leads/"))
    assert phone not in body
    assert phone.removeprefix("+86") not in body
    assert national(phone) not in body
    assert f"{phone[3:6]}****{phone[-4:]}" in body
    assert not PersonalDataAccess.objects.exists()


def test_list_shows_the_lead_columns(client, org):
    lead_make(
        owner=org.alice,
        customer=customer_make(name="苏州精工机械有限公司"),
        expected_amount=Decimal("1234567"),
        source="douyin",
    )
    client.force_login(org.carol)
    body = text(client.get("/leads/"))
    for expected in ["苏州精工机械有限公司", "初筛", "跟进中", "Alice 王", "¥1,234,567"]:
        assert expected in body


def lead_list_queries(client, django_assert_num_queries, expected: int) -> None:
    with django_assert_num_queries(expected):
        response = client.get("/leads/")
    assert response.status_code == 200


def test_list_query_count_does_not_grow_with_rows(client, org, django_assert_num_queries):
    # session, user, default pipeline, its stages, owner choices, one page of leads
    # (+ its stages, regions and provinces, fetched by id)
    expected = 9
    for _ in range(3):
        lead_make(owner=org.alice)
    client.force_login(org.carol)
    lead_list_queries(client, django_assert_num_queries, expected)
    for _ in range(27):
        lead_make(owner=org.bob, customer=customer_make(province="32"))
    lead_list_queries(client, django_assert_num_queries, expected)
    assert len(page_ids(client.get("/leads/"))) == 30


# --- lead detail ---------------------------------------------------------------------------


@pytest.fixture
def alices_lead(org):
    customer = customer_make(province="31", name="上海云启科技有限公司", city="上海", industry="软件")
    contact = contact_make(customer=customer, name="周经理", phone="+8613912345678")
    return lead_make(owner=org.alice, customer=customer, contact=contact, campaign="2024 展会")


@pytest.mark.parametrize("persona", ["alice", "carol", "admin"])
def test_owner_manager_and_admin_see_the_full_number_and_it_is_logged(client, org, alices_lead, persona):
    user = getattr(org, persona)
    client.force_login(user)
    response = client.get(f"/leads/{alices_lead.pk}/")
    assert response.status_code == 200
    body = text(response)
    assert "139 1234 5678" in body
    assert 'href="tel:+8613912345678"' in body
    access = PersonalDataAccess.objects.get()
    assert access.actor == user
    assert access.subject_id == str(alices_lead.contact_id)
    assert access.channel == "page"


def test_director_sees_a_masked_number_and_nothing_is_logged(client, org, alices_lead):
    client.force_login(org.director)
    body = text(client.get(f"/leads/{alices_lead.pk}/"))
    assert "139****5678" in body
    assert "12345678" not in body
    assert not PersonalDataAccess.objects.exists()


@pytest.mark.parametrize("persona", ["bob", "dave", "erin"])
def test_a_lead_out_of_scope_is_not_found(client, org, alices_lead, persona):
    client.force_login(getattr(org, persona))
    response = client.get(f"/leads/{alices_lead.pk}/")
    assert response.status_code == 404
    assert "页面不存在" in text(response)  # our page, which says no more than a missing lead would
    assert alices_lead.title not in text(response)
    response = client.post(f"/leads/{alices_lead.pk}/move/", {"stage": "needs_confirmed"})
    assert response.status_code == 404
    assert Lead.objects.get(pk=alices_lead.pk).stage.code == "screening"
    assert not PersonalDataAccess.objects.exists()


def test_a_lead_that_does_not_exist_is_not_found(client, org):
    client.force_login(org.admin)
    assert client.get("/leads/999999/").status_code == 404


def test_detail_shows_stage_bar_timeline_and_facts(client, org, alices_lead):
    # given a lead that went forward twice and back once, with a reason and a note
    lead_ready_for(alices_lead, "solution_demo")
    lead_move_stage(actor=org.alice, lead=alices_lead, to_stage=stage("needs_confirmed"))
    lead_move_stage(actor=org.alice, lead=alices_lead, to_stage=stage("solution_demo"))
    lead_move_stage(
        actor=org.alice,
        lead=alices_lead,
        to_stage=stage("needs_confirmed"),
        reason="预算待审批",
        note="客户预算要重新审批",
    )
    client.force_login(org.alice)
    response = client.get(f"/leads/{alices_lead.pk}/")
    body = text(response)
    # the stage bar: first stage passed, second current, the rest to come
    steps = re.findall(r'class="stagebar__step is-(\w+)"', body)
    assert steps == ["done", "current", "todo", "todo", "todo"]
    assert re.search(r'aria-current="step">\s*<span class="stagebar__name">需求确认', body)
    # the timeline: newest first, the backward move marked as such
    directions = re.findall(r'class="timeline__item timeline__item--(\w+)"', body)
    assert directions == ["backward", "forward", "forward", "enter"]
    assert "回退" in body
    assert "客户预算要重新审批" in body
    assert "在「初筛」停留" in body
    for fact in [
        "上海云启科技有限公司",
        "软件",
        "上海",
        "华东",
        "官网咨询",
        "2024 展会",
        "¥100,000",
        "周经理",
    ]:
        assert fact in body


def test_detail_shows_a_lost_lead_with_its_reason(client, org, alices_lead):
    lead_move_stage(actor=org.alice, lead=alices_lead, status="lost", reason="预算取消")
    client.force_login(org.alice)
    body = text(client.get(f"/leads/{alices_lead.pk}/"))
    assert 'class="stagebar stagebar--lost"' in body
    assert "输单" in body
    assert "预算取消" in body


def test_detail_in_english_uses_english_stage_names(client, org, alices_lead):
    client.force_login(org.alice)
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    body = text(client.get(f"/leads/{alices_lead.pk}/"))
    assert "Screening" in body
    assert "初筛" not in body


def test_move_form_shows_only_to_those_who_may_edit(client, org, alices_lead):
    for persona, shown in [("alice", True), ("carol", True), ("director", True), ("pm", False)]:
        client.force_login(getattr(org, persona))
        body = text(client.get(f"/leads/{alices_lead.pk}/"))
        assert ('id="move-form"' in body) is shown, persona


def test_detail_query_count_is_fixed(client, org, alices_lead, django_assert_num_queries):
    lead_ready_for(alices_lead, "quote_negotiation")
    for code in ["needs_confirmed", "solution_demo", "quote_negotiation"]:
        lead_move_stage(actor=org.alice, lead=alices_lead, to_stage=stage(code))
    client.force_login(org.alice)
    # session, user, lead, stages, timeline, may-edit check, access log insert, the lead's
    # assignments (routing's "为什么分给我"; the names of the people they mention are one more
    # query when there are any — tests/routing/test_pages.py pins that case), and the lead's
    # attachments for what the next stage needs (C2.2; contract_signed needs a contract)
    with django_assert_num_queries(9):
        response = client.get(f"/leads/{alices_lead.pk}/")
    assert response.status_code == 200


# --- moving a lead -------------------------------------------------------------------------


def test_a_valid_move_updates_the_stage_and_the_timeline(client, org, alices_lead):
    client.force_login(org.alice)
    response = client.post(
        f"/leads/{alices_lead.pk}/move/", {"stage": "needs_confirmed", "note": "已确认采购需求"}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/leads/{alices_lead.pk}/"
    lead = Lead.objects.get(pk=alices_lead.pk)
    assert lead.stage.code == "needs_confirmed"
    page = text(client.get(response["Location"]))
    assert "已保存" in page
    assert "已确认采购需求" in page
    assert re.findall(r"timeline__item--(\w+)", page) == ["forward", "enter"]


def test_an_htmx_move_answers_with_the_form_and_fresh_stage_bar_and_timeline(client, org, alices_lead):
    client.force_login(org.carol)
    lead_ready_for(alices_lead, "solution_demo")
    response = client.post(
        f"/leads/{alices_lead.pk}/move/",
        {"stage": "solution_demo"},
        HTTP_HX_TARGET="move-form",
        **HTMX,
    )
    assert response.status_code == 200
    body = text(response)
    assert body.lstrip().startswith('<form id="move-form"')
    assert (
        '<section id="stage-bar" class="stagebar stagebar--open" aria-label="阶段" hx-swap-oob="true">'
        in body
    )
    assert 'id="timeline"' in body
    assert re.findall(r"timeline__item--(\w+)", body) == ["forward", "enter"]
    assert Lead.objects.get(pk=alices_lead.pk).stage.code == "solution_demo"


def test_losing_without_a_reason_shows_the_problem(client, org, alices_lead):
    client.force_login(org.alice)
    response = client.post(
        f"/leads/{alices_lead.pk}/move/",
        {"stage": "screening", "status": "lost", "reason": ""},
        HTTP_HX_TARGET="move-form",
        **HTMX,
    )
    assert response.status_code == 422
    body = text(response)
    assert "请填写输单原因" in body
    assert 'class="field field--wide field--invalid"' in body
    assert Lead.objects.get(pk=alices_lead.pk).status == "open"


def test_a_refused_move_without_javascript_renders_the_page_with_the_problem(client, org, alices_lead):
    client.force_login(org.alice)
    response = client.post(f"/leads/{alices_lead.pk}/move/", {"stage": "solution_demo", "status": "won"})
    assert response.status_code == 422
    body = text(response)
    assert "<html" in body
    assert "线索需进入最后阶段「合同签署」才能赢单" in body


def test_an_unknown_stage_is_refused_with_a_message(client, org, alices_lead):
    client.force_login(org.alice)
    response = client.post(f"/leads/{alices_lead.pk}/move/", {"stage": "teleported"})
    assert response.status_code == 422
    assert "阶段" in text(response)
    assert Lead.objects.get(pk=alices_lead.pk).stage.code == "screening"


def test_product_manager_may_not_move_a_lead(client, org, alices_lead):
    client.force_login(org.pm)
    response = client.post(f"/leads/{alices_lead.pk}/move/", {"stage": "needs_confirmed"})
    assert response.status_code == 403
    assert Lead.objects.get(pk=alices_lead.pk).stage.code == "screening"


def test_move_rejects_get(client, org, alices_lead):
    client.force_login(org.alice)
    assert client.get(f"/leads/{alices_lead.pk}/move/").status_code == 405


# --- language ------------------------------------------------------------------------------


def test_pages_are_chinese_by_default_and_english_on_request(client, org):
    lead_make(owner=org.alice)
    client.force_login(org.alice)
    # a browser asking for English still gets Chinese until the user switches
    chinese = text(client.get("/leads/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9"))
    assert "线索" in chinese
    assert 'lang="zh-Hans"' in chinese

    response = client.post("/i18n/setlang/", {"language": "en", "next": "/leads/"})
    assert response.status_code == 302
    assert response["Location"] == "/leads/"
    english = text(client.get("/leads/"))
    assert "Leads" in english
    assert "Screening" in english
    assert "线索" not in english
    assert 'lang="en"' in english

    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert "线索" in text(client.get("/leads/"))


# --- admin ---------------------------------------------------------------------------------


def test_admin_lead_list_is_cheap_and_does_not_grow_with_rows(client, org, django_assert_max_num_queries):
    for _ in range(5):
        lead_make(owner=org.alice)
    client.force_login(org.admin)
    with django_assert_max_num_queries(12) as first:
        assert client.get("/admin/crm/lead/").status_code == 200
    for _ in range(20):
        lead_make(owner=org.bob)
    with django_assert_max_num_queries(len(first.captured_queries)):
        response = client.get("/admin/crm/lead/")
    assert "25" in text(response)


def test_admin_lead_edit_goes_through_the_service_and_leaves_stage_alone(client, org, alices_lead):
    from salesloop.core.models import AuditEntry

    client.force_login(org.admin)
    url = f"/admin/crm/lead/{alices_lead.pk}/change/"
    page = text(client.get(url))
    assert 'name="stage"' not in page
    assert 'name="status"' not in page
    response = client.post(
        url,
        {
            "title": "改过的标题",
            "owner": org.bob.pk,
            "campaign": "",
            "expected_amount": "5000",
            "stage": stage("contract_signed").pk,  # ignored: read-only here
            "status": "won",
            "moves-TOTAL_FORMS": "0",
            "moves-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, text(response)
    lead = Lead.objects.get(pk=alices_lead.pk)
    assert (lead.title, lead.owner, lead.expected_amount) == ("改过的标题", org.bob, Decimal("5000"))
    assert (lead.stage.code, lead.status) == ("screening", "open")
    entry = AuditEntry.objects.filter(action="lead.update", target_id=str(lead.pk)).get()
    assert entry.actor == org.admin
    assert entry.after["owner"] == org.bob.pk


def test_admin_refuses_a_non_seller_as_owner_on_the_form(client, org, alices_lead):
    client.force_login(org.admin)
    response = client.post(
        f"/admin/crm/lead/{alices_lead.pk}/change/",
        {
            "title": alices_lead.title,
            "owner": org.director.pk,
            "expected_amount": "1",
            "moves-TOTAL_FORMS": "0",
            "moves-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert Lead.objects.get(pk=alices_lead.pk).owner == org.alice


def test_admin_keeps_facts_read_only(client, org, alices_lead):
    client.force_login(org.admin)
    move = alices_lead.moves.get()
    assert client.get("/admin/pipeline/stagemove/add/").status_code == 403
    assert client.get(f"/admin/pipeline/stagemove/{move.pk}/change/").status_code == 200  # view only
    assert client.post(f"/admin/pipeline/stagemove/{move.pk}/delete/").status_code == 403
    assert client.get("/admin/crm/lead/add/").status_code == 403
    assert client.get("/admin/core/auditentry/").status_code == 200
    assert client.get("/admin/core/auditentry/add/").status_code == 403
    assert client.get("/admin/core/personaldataaccess/").status_code == 200


def test_admin_contact_page_logs_the_unmasked_view(client, org, alices_lead):
    client.force_login(org.admin)
    listing = text(client.get("/admin/crm/contact/"))
    assert "139****5678" in listing
    assert "13912345678" not in listing
    assert not PersonalDataAccess.objects.exists()
    client.get(f"/admin/crm/contact/{alices_lead.contact_id}/change/")
    access = PersonalDataAccess.objects.get()
    assert (access.actor, access.channel) == (org.admin, "admin")
