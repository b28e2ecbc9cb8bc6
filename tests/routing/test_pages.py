"""The routing pages (C8, issue 4 items 2 and 7): versions, a version's rules and its editor, the
sandbox's fairness report, and a lead's "为什么分给我" with the reassign form — through real HTTP
(Django's test client), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt
import json
import re
from html import unescape

import pytest

from salesloop.core import clock
from salesloop.crm.models import Lead
from salesloop.routing import sandbox
from salesloop.routing.models import (
    Assignment,
    ReportKind,
    ReportStatus,
    RoutingReport,
    RuleSet,
    RuleSetStatus,
)
from salesloop.routing.services import (
    lead_reassign,
    lead_route,
    policy_update,
    ruleset_create,
    ruleset_in_force,
    ruleset_rollback,
)
from tests.factories import lead_make, user_make
from tests.routing.conftest import definition, in_force, rule

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
T0 = dt.datetime(2026, 11, 2, 2, 0, tzinfo=dt.UTC)  # Monday 10:00 in Shanghai
REGION_ROUND_ROBIN = definition(
    rule("by-region", 10, lead_region=True),
    fallback={"pool": {"regions": ["east", "south"]}, "strategy": "round_robin"},
)


def text(response) -> str:
    return unescape(response.content.decode())


def scheduled(actor, document, *, in_hours: int = 48) -> RuleSet:
    """A version published to take effect later (the publication gate has its own tests)."""
    ruleset = ruleset_create(actor=actor, definition=document)
    RuleSet.objects.filter(pk=ruleset.pk).update(
        status=RuleSetStatus.PUBLISHED,
        effective_at=clock.now() + dt.timedelta(hours=in_hours),
        published_at=clock.now(),
        published_by=actor,
    )
    ruleset.refresh_from_db()
    return ruleset


@pytest.fixture
def versions(org):
    """v1 in force (again), v2 rolled back with a reason, v3 scheduled, v4 a draft."""
    clock.set_now(T0)
    first = in_force(org.admin, REGION_ROUND_ROBIN, since=dt.timedelta(days=2))
    second = in_force(org.admin, definition(rule("all-east", 10, regions=["east"])))
    ruleset_rollback(actor=org.admin, reason="华南投诉上升，先回到按区域轮转")
    third = scheduled(
        org.director, definition(rule("south-first", 10, when={"provinces": ["广东"]}, users=["erin"]))
    )
    fourth = ruleset_create(actor=org.director, definition=REGION_ROUND_ROBIN)
    return {"first": first, "second": second, "third": third, "fourth": fourth}


# --- login and scope ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/routing/", "/routing/rulesets/1/", "/routing/reports/1/", "/routing/leads/1/assignment/"]
)
def test_it_sends_anonymous_visitors_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_reports_are_not_for_reps_or_product_managers(client, org, versions):
    report = RoutingReport.objects.create(ruleset=versions["fourth"], kind=ReportKind.REPLAY)
    for persona, status in [("alice", 404), ("pm", 404), ("carol", 200), ("director", 200)]:
        client.force_login(getattr(org, persona))
        assert client.get(f"/routing/reports/{report.pk}/").status_code == status, persona
        assert client.get(f"/routing/reports/{report.pk}/progress/").status_code == status, persona


def test_drafts_are_404_to_everyone_who_does_not_write_rules(client, org, versions):
    draft = versions["fourth"]
    for persona in ("alice", "carol", "pm"):
        client.force_login(getattr(org, persona))
        assert client.get(f"/routing/rulesets/{draft.pk}/").status_code == 404, persona
        response = client.post(f"/routing/rulesets/{draft.pk}/", {"definition": "{}"})
        assert response.status_code == 404, persona
    assert RuleSet.objects.get(pk=draft.pk).definition["rules"][0]["id"] == "by-region"


def test_writing_is_refused_to_managers_even_on_versions_they_may_read(client, org, versions):
    client.force_login(org.carol)
    third = versions["third"]
    assert client.get(f"/routing/rulesets/{third.pk}/").status_code == 200
    assert client.post(f"/routing/rulesets/{third.pk}/cancel/", {"reason": "不同意"}).status_code == 403
    assert client.post("/routing/rulesets/new/").status_code == 403
    assert client.post("/routing/rollback/", {"reason": "不同意"}).status_code == 403
    assert RuleSet.objects.get(pk=third.pk).status == RuleSetStatus.PUBLISHED


# --- the overview -----------------------------------------------------------------------------


def test_a_director_sees_in_force_scheduled_drafts_history_and_policy(client, org, versions):
    policy_update(actor=org.admin, committee=[org.carol, org.director], notice_hours=48)
    client.force_login(org.director)
    response = client.get("/routing/")
    assert response.status_code == 200
    context = response.context
    assert context["current"].ruleset == versions["first"]
    assert [row.ruleset for row in context["scheduled"]] == [versions["third"]]
    assert [row.ruleset for row in context["drafts"]] == [versions["fourth"]]
    assert [(row.ruleset, row.state) for row in context["history"]] == [(versions["second"], "rolled_back")]
    body = text(response)
    # the rollback is told with who and why; the scheduled version with its countdown
    assert "华南投诉上升，先回到按区域轮转" in body
    assert context["scheduled"][0].countdown == "2\xa0日"  # 48 h from now
    assert 'action="/routing/rulesets/new/"' in body  # a director drafts
    assert 'action="/routing/rollback/"' not in body  # only admins roll back
    assert context["committee"] == [str(org.carol), str(org.director)]
    assert "48" in body


def test_a_rep_reads_the_rules_in_force_but_no_drafts_policy_or_buttons(client, org, versions):
    client.force_login(org.alice)
    response = client.get("/routing/")
    assert response.status_code == 200
    body = text(response)
    assert response.context["current"].ruleset == versions["first"]
    assert response.context["drafts"] == []
    assert "policy" not in response.context
    assert "/routing/rulesets/new/" not in body and "/routing/rollback/" not in body
    assert "华南投诉上升，先回到按区域轮转" in body  # the history is public: why rules changed
    # the version in force is readable in words, without an editor or a button
    page = client.get(f"/routing/rulesets/{versions['first'].pk}/")
    assert page.status_code == 200
    assert page.context["readable"].rules[0].pool == ["线索所在区域的销售"]
    assert "ruleset-editor" not in text(page) and "/routing/rulesets/new/" not in text(page)


def test_the_overview_costs_the_same_whatever_the_number_of_versions(
    client, org, versions, django_assert_num_queries
):
    client.force_login(org.director)
    # session, user, version in force, versions, their people, policy, committee, A/B test
    with django_assert_num_queries(8):
        assert client.get("/routing/").status_code == 200
    for n in range(6):
        ruleset_create(actor=org.director, definition=REGION_ROUND_ROBIN)
        scheduled(org.admin, REGION_ROUND_ROBIN, in_hours=50 + n)
    with django_assert_num_queries(8):
        response = client.get("/routing/")
    assert len(response.context["drafts"]) == 7 and len(response.context["scheduled"]) == 7


# --- roll back ------------------------------------------------------------------------------


def test_rollback_needs_a_written_reason(client, org):
    first = in_force(org.admin, REGION_ROUND_ROBIN, since=dt.timedelta(days=1))
    second = in_force(org.admin, definition(rule("all-east", 10, regions=["east"])))
    client.force_login(org.admin)
    response = client.post("/routing/rollback/", {"reason": "   "})
    assert response.status_code == 422
    assert response.context["rollback_form"].errors["reason"]
    assert ruleset_in_force() == second  # nothing happened

    response = client.post("/routing/rollback/", {"reason": "区域匹配率骤降"})
    assert response.status_code == 302
    assert ruleset_in_force() == first
    second.refresh_from_db()
    assert second.status == RuleSetStatus.ROLLED_BACK and second.rollback_reason == "区域匹配率骤降"
    assert second.rolled_back_by == org.admin


def test_rolling_back_the_only_version_says_why_not(client, org):
    in_force(org.admin, REGION_ROUND_ROBIN)
    client.force_login(org.admin)
    response = client.post("/routing/rollback/", {"reason": "试试"})
    assert response.status_code == 422
    assert "nothing to roll back to" in " ".join(response.context["rollback_problems"])


# --- drafts and the editor -------------------------------------------------------------------


def test_a_new_draft_copies_the_version_in_force(client, org):
    current = in_force(org.admin, REGION_ROUND_ROBIN)
    client.force_login(org.director)
    response = client.post("/routing/rulesets/new/")
    draft = RuleSet.objects.get(status=RuleSetStatus.DRAFT)
    assert response.status_code == 302 and response["Location"] == f"/routing/rulesets/{draft.pk}/"
    assert draft.definition == current.definition and draft.based_on == current


def test_without_any_version_a_new_draft_starts_from_a_starter_naming_only_what_exists(client, org):
    client.force_login(org.director)
    client.post("/routing/rulesets/new/")
    draft = RuleSet.objects.get(status=RuleSetStatus.DRAFT)
    assert draft.definition["rules"][0]["pool"] == {
        "teams": [],
        "regions": [],
        "users": [],
        "lead_region": True,
    }
    assert draft.definition["fallback"]["pool"]["regions"] == ["east", "south"]


def test_the_editor_refuses_an_invalid_document_with_each_path_and_keeps_the_text(client, org):
    draft = ruleset_create(actor=org.director, definition=REGION_ROUND_ROBIN)
    typed = json.dumps(
        definition(
            rule("east", 10, regions=["east"]),
            rule("ghosts", 20, users=["alice", "nobody"]),
            fallback={"pool": {"regions": ["north"]}, "strategy": "round_robin"},
        ),
        ensure_ascii=False,
        indent=4,
    )
    client.force_login(org.director)
    response = client.post(f"/routing/rulesets/{draft.pk}/", {"definition": typed})
    assert response.status_code == 422
    assert response.context["forms"].editor_errors == [
        ("rules[1].pool.users[1]", "no user 'nobody'"),
        ("fallback.pool.regions[0]", "no region 'north' (one of east, south)"),
    ]
    body = text(response)
    assert "rules[1].pool.users[1]" in body and "no user 'nobody'" in body
    textarea = re.search(r"<textarea[^>]*name=\"definition\"[^>]*>(.*?)</textarea>", body, re.S)
    assert textarea and textarea.group(1).strip("\r\n") == typed  # nothing typed is lost
    draft.refresh_from_db()
    assert draft.definition["rules"][0]["id"] == "by-region"  # and nothing was saved


def test_the_editor_shows_the_document_as_a_person_writes_it_and_it_means_the_same(client, org):
    document = definition(
        rule("w", 30, strategy="weighted", users=["alice", "bob"], weights={"alice": 2, "bob": 1}),
        rule(
            "gd", 10, when={"provinces": ["广东"], "hours": {"from": "09:00", "to": "18:00"}}, users=["erin"]
        ),
        max_open_leads=40,
    )
    draft = ruleset_create(actor=org.director, definition=document)
    client.force_login(org.director)
    shown = client.get(f"/routing/rulesets/{draft.pk}/").context["forms"].editor.initial["definition"]
    assert "null" not in shown and '"teams": []' not in shown  # no defaults spelled out
    assert shown.index('"id": "w"') < shown.index('"priority": 30') < shown.index('"pool"')  # reading order
    # saved back untouched, it is the same rule set
    assert client.post(f"/routing/rulesets/{draft.pk}/", {"definition": shown}).status_code == 302
    before = draft.definition
    draft.refresh_from_db()
    assert draft.definition == before


def test_the_editor_names_a_json_syntax_error_by_line(client, org):
    draft = ruleset_create(actor=org.director, definition=REGION_ROUND_ROBIN)
    client.force_login(org.director)
    response = client.post(
        f"/routing/rulesets/{draft.pk}/", {"definition": '{\n  "name": "x",\n  "rules": [}\n'}
    )
    assert response.status_code == 422
    [(path, message)] = response.context["forms"].editor_errors
    assert path == "(document)" and "3" in message  # the line of the stray brace


def test_a_valid_document_is_saved(client, org):
    draft = ruleset_create(actor=org.director, definition=REGION_ROUND_ROBIN)
    changed = definition(
        rule("south", 5, when={"provinces": ["广东"]}, users=["erin"]), rule("rest", 10, lead_region=True)
    )
    client.force_login(org.director)
    response = client.post(
        f"/routing/rulesets/{draft.pk}/", {"definition": json.dumps(changed, ensure_ascii=False)}
    )
    assert response.status_code == 302
    draft.refresh_from_db()
    assert [r["id"] for r in draft.definition["rules"]] == ["south", "rest"]
    assert draft.definition["rules"][0]["when"]["provinces"] == ["44"]


def test_bad_input_is_refused_never_a_500(client, org, versions):
    client.force_login(org.director)
    first, draft = versions["first"], versions["fourth"]
    # a published version is not edited, whatever a hand-made request says
    response = client.post(f"/routing/rulesets/{first.pk}/", {"definition": json.dumps(REGION_ROUND_ROBIN)})
    assert response.status_code == 422 and "only a draft is edited" in " ".join(
        response.context["stray_problems"]
    )
    assert client.post(f"/routing/rulesets/{draft.pk}/", {"definition": "[1, 2]"}).status_code == 422
    assert client.post(f"/routing/rulesets/{draft.pk}/", {"definition": "[" * 100_000}).status_code == 422
    assert client.post(f"/routing/rulesets/{draft.pk}/publish/", {"effective_at": "明天"}).status_code == 422
    assert client.post(f"/routing/rulesets/{draft.pk}/simulate/", {"days": "0"}).status_code == 422
    assert client.post(f"/routing/rulesets/{draft.pk}/ab-test/", {"share_percent": "x"}).status_code == 422
    assert client.post("/routing/rulesets/new/", {"based_on": "99999999"}).status_code == 404
    assert client.get("/routing/reports/99999999/").status_code == 404


def test_a_version_reads_in_words_in_priority_order(client, org):
    current = in_force(
        org.admin,
        definition(
            rule("rest", 20, lead_region=True, caps={"max_open_leads": 30}),
            rule("gd", 10, when={"provinces": ["广东"], "sources": ["call_400"]}, users=["erin"]),
            rule("w", 30, strategy="weighted", users=["alice", "bob"], weights={"alice": 2, "bob": 1}),
        ),
    )
    client.force_login(org.bob)  # a rep reads the rules in force
    response = client.get(f"/routing/rulesets/{current.pk}/")
    assert response.status_code == 200
    rules = response.context["readable"].rules
    assert [r.id for r in rules] == ["gd", "rest", "w"]
    assert rules[0].conditions == ["来源为 400电话", "省份为 广东"]
    assert rules[0].pool == ["指定人员：erin"]
    assert rules[1].caps == ["每位销售最多 30 条在跟线索"]
    assert rules[2].weights == ["Alice 王 × 2", "bob × 1"]
    assert response.context["readable"].fallback.conditions == ["其他规则都没接住的线索"]
    assert "ruleset-editor" not in text(response)  # published: nothing to edit


# --- simulate, publish, cancel ---------------------------------------------------------------


@pytest.fixture
def incident(org):
    """The source's incident in small: region round-robin in force; a candidate that sends every
    广东 lead to alice (华东). Six 广东 leads, six 华东 leads."""
    user_make("rep", org.south, username="frank")
    in_force(org.admin, REGION_ROUND_ROBIN, since=dt.timedelta(days=40))
    for _ in range(6):
        lead_make(province="44")
    for province in ("31", "32") * 3:
        lead_make(province=province)
    return ruleset_create(
        actor=org.director,
        definition=definition(
            rule("gd-to-alice", 5, when={"provinces": ["广东"]}, users=["alice"]),
            rule("rest", 10, lead_region=True),
        ),
    )


def test_simulating_from_the_page_gives_a_report_that_says_what_got_worse(client, org, incident):
    client.force_login(org.director)
    response = client.post(f"/routing/rulesets/{incident.pk}/simulate/", {"days": "30"}, **HTMX)
    assert response.status_code == 200
    report = RoutingReport.objects.get(ruleset=incident)
    assert report.status == ReportStatus.DONE  # the test settings run tasks at once
    assert f'href="/routing/reports/{report.pk}/"' in text(response)
    assert "hx-trigger" not in text(response)  # done: the fragment stops polling

    page = client.get(f"/routing/reports/{report.pk}/")
    assert page.status_code == 200
    assert page.context["blocking"]
    rows = {row.label: row for row in page.context["metric_rows"]}
    assert (rows["区域匹配率"].current, rows["区域匹配率"].candidate, rows["区域匹配率"].finding) == (
        "100.0%",
        "50.0%",
        "block",
    )
    body = text(page)
    assert "阻止发布" in body and "广东" in body
    bars = {bar.name: bar for bar in page.context["rep_bars"]}
    assert bars["Alice 王"].candidate == "75.0%" and bars["Alice 王"].flagged
    heat = page.context["heat_candidate"]
    alice_row = dict(heat.rows)["Alice 王"]
    flagged = [heat.provinces[i] for i, cell in enumerate(alice_row) if cell.flagged]
    assert flagged == ["广东"]


def test_a_pending_simulation_is_polled_until_done(client, org, incident):
    report = RoutingReport.objects.create(
        ruleset=incident, kind=ReportKind.REPLAY, leads_total=12, leads_done=3
    )
    client.force_login(org.director)
    fragment = text(client.get(f"/routing/reports/{report.pk}/progress/", **HTMX))
    assert f'hx-get="/routing/reports/{report.pk}/progress/"' in fragment and 'value="3"' in fragment
    sandbox.replay_run(report_id=report.pk)  # the worker
    fragment = text(client.get(f"/routing/reports/{report.pk}/progress/", **HTMX))
    assert "hx-get" not in fragment and f'href="/routing/reports/{report.pk}/"' in fragment
    page = client.get(f"/routing/rulesets/{incident.pk}/")
    assert page.context["active_report"] is None


def test_publishing_without_a_simulation_is_refused_with_the_reason(client, org, incident):
    client.force_login(org.director)
    when = (clock.now() + dt.timedelta(hours=49)).astimezone(clock.org_tz()).strftime("%Y-%m-%dT%H:%M")
    response = client.post(f"/routing/rulesets/{incident.pk}/publish/", {"effective_at": when})
    assert response.status_code == 422
    assert any("simulate" in p for p in response.context["forms"].publish_problems)
    assert RuleSet.objects.get(pk=incident.pk).status == RuleSetStatus.DRAFT


def test_a_worse_version_needs_the_override_and_the_notice_period(client, org, incident):
    client.force_login(org.director)
    client.post(f"/routing/rulesets/{incident.pk}/simulate/", {"days": "30"})
    page = client.get(f"/routing/rulesets/{incident.pk}/")
    assert "override_reason" in page.context["forms"].publish.fields  # shown: the replay was worse

    too_soon = (clock.now() + dt.timedelta(hours=2)).astimezone(clock.org_tz()).strftime("%Y-%m-%dT%H:%M")
    response = client.post(f"/routing/rulesets/{incident.pk}/publish/", {"effective_at": too_soon})
    assert response.status_code == 422
    assert response.context["forms"].publish.errors["effective_at"]

    later = clock.now() + dt.timedelta(hours=49)
    when = later.astimezone(clock.org_tz()).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        f"/routing/rulesets/{incident.pk}/publish/", {"effective_at": when, "note": "试点"}
    )
    assert response.status_code == 422
    assert response.context["forms"].publish.errors["override_reason"]
    assert 'name="effective_at"' in text(response) and when in text(response)  # kept as typed

    response = client.post(
        f"/routing/rulesets/{incident.pk}/publish/",
        {"effective_at": when, "note": "试点", "override_reason": "广东大客户需要专人，委员会已同意"},
    )
    assert response.status_code == 302
    published = RuleSet.objects.get(pk=incident.pk)
    assert published.status == RuleSetStatus.PUBLISHED
    assert published.effective_at == later.replace(second=0, microsecond=0)
    assert published.override_reason == "广东大客户需要专人，委员会已同意"


def test_a_scheduled_version_is_withdrawn_only_with_a_reason(client, org, versions):
    third = versions["third"]
    client.force_login(org.director)
    response = client.post(f"/routing/rulesets/{third.pk}/cancel/", {"reason": ""})
    assert response.status_code == 422 and response.context["forms"].cancel.errors["reason"]
    assert client.post(f"/routing/rulesets/{third.pk}/cancel/", {"reason": "等双十一以后"}).status_code == 302
    assert RuleSet.objects.get(pk=third.pk).status == RuleSetStatus.CANCELLED


def test_an_ab_test_starts_from_the_page_and_can_be_stopped(client, org, incident):
    client.force_login(org.director)
    response = client.post(f"/routing/rulesets/{incident.pk}/ab-test/", {"share_percent": "10", "days": "7"})
    report = RoutingReport.objects.get(ruleset=incident, kind=ReportKind.AB)
    assert response.status_code == 302 and response["Location"] == f"/routing/reports/{report.pk}/"
    assert str(report.share) == "0.100"
    overview = client.get("/routing/")
    assert overview.context["ab_test"] == report
    page = client.get(f"/routing/reports/{report.pk}/")
    assert page.context["may_stop"]
    assert client.post(f"/routing/reports/{report.pk}/stop/").status_code == 302
    report.refresh_from_db()
    assert report.stopped_at is not None


# --- a lead's assignments --------------------------------------------------------------------


@pytest.fixture
def routed(org):
    """A 上海 lead routed by the region round-robin: it goes to alice, bob was eligible too."""
    in_force(org.admin, REGION_ROUND_ROBIN)
    lead = lead_make(province="31")
    lead_route(lead=lead)
    lead.refresh_from_db()
    assert lead.owner == org.alice
    return lead


def test_the_owner_sees_why_the_lead_is_theirs_and_no_form(client, org, routed):
    client.force_login(org.alice)
    response = client.get(f"/leads/{routed.pk}/")
    panel = response.context["assignment_panel"]
    assert panel.heading == "为什么分给我" and panel.mine
    assert panel.form is None
    body = text(response)
    assert "为什么分给我" in body and "规则 by-region" in body
    assert 'id="reassign-form"' not in body
    [winning] = [r for r in panel.current.rules if r.outcome == "winner"]
    assert [(c.name, c.kept, c.winner) for c in winning.candidates] == [
        ("Alice 王", True, True),
        ("bob", True, False),
    ]
    assert (
        client.post(
            f"/routing/leads/{routed.pk}/assignment/", {"owner": org.bob.pk, "reason": "x"}
        ).status_code
        == 403
    )


def test_a_manager_reassigns_with_a_reason_and_the_record_shows_it(client, org, routed):
    client.force_login(org.carol)
    page = client.get(f"/leads/{routed.pk}/")
    panel = page.context["assignment_panel"]
    assert panel.heading == "分配记录"
    choices = dict(panel.form.fields["owner"].choices)
    assert str(org.bob.pk) in choices and str(org.erin.pk) not in choices  # own region only
    assert str(org.alice.pk) not in choices  # already hers

    response = client.post(
        f"/routing/leads/{routed.pk}/assignment/", {"owner": org.bob.pk, "reason": "客户要求换人"}
    )
    assert response.status_code == 302 and response["Location"] == f"/leads/{routed.pk}/"
    assert Lead.objects.get(pk=routed.pk).owner == org.bob
    manual = Assignment.objects.filter(lead=routed).latest("id")
    assert (manual.method, manual.actor, manual.reason) == ("manual", org.carol, "客户要求换人")

    panel = client.get(f"/leads/{routed.pk}/").context["assignment_panel"]
    assert any("客户要求换人" in line for line in panel.current.sentences)
    assert len(panel.earlier) == 1 and panel.earlier[0].rules  # the routed one, with its trace


def test_a_reassignment_without_a_reason_is_refused_by_field(client, org, routed):
    client.force_login(org.carol)
    response = client.post(
        f"/routing/leads/{routed.pk}/assignment/", {"owner": org.bob.pk, "reason": ""}, **HTMX
    )
    assert response.status_code == 422
    assert response.context["panel"].form.errors["reason"]
    assert 'id="lead-assignment"' in text(response)  # the fragment htmx swaps in
    assert Lead.objects.get(pk=routed.pk).owner == org.alice


def test_a_manager_cannot_hand_a_lead_to_another_region(client, org, routed):
    client.force_login(org.carol)
    response = client.post(
        f"/routing/leads/{routed.pk}/assignment/", {"owner": org.erin.pk, "reason": "试试"}
    )
    assert response.status_code == 422
    assert response.context["panel"].form.errors["owner"]
    assert Lead.objects.get(pk=routed.pk).owner == org.alice


def test_out_of_scope_leads_are_404(client, org, routed):
    for persona in ("dave", "bob"):
        client.force_login(getattr(org, persona))
        assert client.get(f"/routing/leads/{routed.pk}/assignment/").status_code == 404, persona
        response = client.post(
            f"/routing/leads/{routed.pk}/assignment/", {"owner": org.erin.pk, "reason": "抢"}
        )
        assert response.status_code == 404, persona
    assert Lead.objects.get(pk=routed.pk).owner == org.alice


def test_a_htmx_reassignment_sends_the_browser_back_to_the_lead(client, org, routed):
    client.force_login(org.director)
    response = client.post(
        f"/routing/leads/{routed.pk}/assignment/", {"owner": "pool", "reason": "离职交接"}, **HTMX
    )
    assert response.status_code == 200 and response["HX-Redirect"] == f"/leads/{routed.pk}/"
    lead = Lead.objects.get(pk=routed.pk)
    assert lead.owner is None and lead.assigned_at is None


def test_the_lead_page_costs_the_same_however_long_the_history(
    client, org, routed, django_assert_num_queries
):
    client.force_login(org.carol)
    # session, user, lead, stages, timeline, may-edit, access log, assignments, their people, owners
    with django_assert_num_queries(10):
        assert client.get(f"/leads/{routed.pk}/").status_code == 200
    for owner in (org.bob, org.alice, org.bob):
        lead_reassign(actor=org.carol, lead=Lead.objects.get(pk=routed.pk), owner=owner, reason="轮换")
    with django_assert_num_queries(10):
        response = client.get(f"/leads/{routed.pk}/")
    assert len(response.context["assignment_panel"].earlier) == 3


def test_the_panel_speaks_english_when_asked(client, org, routed):
    client.force_login(org.alice)
    client.cookies["django_language"] = "en"
    body = text(client.get(f"/leads/{routed.pk}/"))
    assert "Why this lead is mine" in body and "为什么分给我" not in body
