"""Lead routing in a real headless Chromium (Debian's) against a live server: a manager reads why a
lead was assigned and reassigns it; a director fixes a draft, simulates it and reads the report;
a rep reads "为什么分给我" on a phone."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from salesloop.crm.models import Lead
from salesloop.routing.models import Assignment, ReportStatus, RoutingReport
from salesloop.routing.sandbox import replay_run
from salesloop.routing.services import lead_route, ruleset_create
from tests.browsing import PHONE, log_in, watch_for_broken_assets
from tests.factories import lead_make, user_make
from tests.routing.conftest import definition, in_force, rule

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

REGION_ROUND_ROBIN = definition(
    rule("by-region", 10, lead_region=True),
    fallback={"pool": {"regions": ["east", "south"]}, "strategy": "round_robin"},
)


def routed_lead(org) -> Lead:
    in_force(org.admin, REGION_ROUND_ROBIN)
    lead = lead_make(province="31", title="云启 CRM 替换项目")
    lead_route(lead=lead)
    lead.refresh_from_db()
    assert lead.owner == org.alice
    return lead


def test_a_manager_sees_why_a_lead_was_assigned_and_reassigns_it(browser, live_server, transactional_db, org):
    # given a 上海 lead the region round-robin gave to alice, bob being eligible too
    lead = routed_lead(org)
    page = browser.new_page()
    broken = watch_for_broken_assets(page)
    log_in(page, live_server.url, "carol")

    # when carol, their manager, opens it
    page.goto(f"{live_server.url}/leads/{lead.pk}/")
    section = page.locator("#lead-assignment")
    # then she reads the assignment in words, and the whole evaluation on demand
    assert section.get_by_role("heading", name="分配记录").is_visible()
    assert "规则 by-region" in section.locator(".assignment__why").inner_text()
    section.get_by_text("逐条规则的判断与每位候选人").click()
    winner = section.locator(".trace__candidates .is-winner")
    assert winner.is_visible() and "Alice 王" in winner.inner_text() and "获分配" in winner.inner_text()
    assert "bob" in section.locator(".trace__candidates .is-kept").inner_text()

    # a reason is required: without one the browser does not even send the form
    section.locator("select[name=owner]").select_option(label="bob")
    section.get_by_role("button", name="按此理由改派").click()
    assert section.locator("textarea[name=reason]").evaluate("el => el.validity.valueMissing")
    assert Lead.objects.get(pk=lead.pk).owner == org.alice

    # with a reason the lead is bob's, and the page says who did it and why
    page.locator("#lead-assignment select[name=owner]").select_option(label="bob")
    page.locator("#lead-assignment textarea[name=reason]").fill("客户要求换一位熟悉制造业的销售")
    page.locator("#lead-assignment").get_by_role("button", name="按此理由改派").click()
    page.wait_for_selector(".notice--success")
    assert "已改派给 bob" in page.locator(".flash").inner_text()
    why = page.locator("#lead-assignment .assignment__why").first.inner_text()
    assert "客户要求换一位熟悉制造业的销售" in why
    assert "更早的 1 次分配" in page.locator("#lead-assignment").inner_text()
    assert Lead.objects.get(pk=lead.pk).owner == org.bob
    assert Assignment.objects.filter(lead=lead, method="manual", actor=org.carol).count() == 1
    assert broken == []


def test_a_director_fixes_a_draft_simulates_it_and_reads_the_report(
    browser, live_server, transactional_db, org, settings
):
    # given region round-robin in force for weeks, and a draft that sends every 广东 lead to alice
    user_make("rep", org.south, username="frank")
    in_force(org.admin, REGION_ROUND_ROBIN, since=dt.timedelta(days=40))
    for _ in range(6):
        lead_make(province="44")
    for province in ("31", "32") * 3:
        lead_make(province=province)
    draft = ruleset_create(actor=org.director, definition=REGION_ROUND_ROBIN)
    # replays run in a worker, as in production: the page must show progress while it runs
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}

    page = browser.new_page()
    broken = watch_for_broken_assets(page)
    log_in(page, live_server.url, "director")
    page.get_by_role("navigation").get_by_role("link", name="线索分配").click()
    page.wait_for_url(f"{live_server.url}/routing/")
    page.get_by_role("link", name=f"v{draft.version} 测试规则").click()
    page.wait_for_url(f"{live_server.url}/routing/rulesets/{draft.pk}/")

    # when the director writes a rule naming someone who does not exist
    editor = page.locator("textarea[name=definition]")
    document = editor.input_value().replace(
        '"rules": [',
        '"rules": [{"id": "gd-to-alice", "name": "广东给 Alice", "priority": 5, '
        '"when": {"provinces": ["广东"]}, "pool": {"users": ["alise"]}, "strategy": "round_robin"}, ',
        1,
    )
    editor.fill(document)
    page.get_by_role("button", name="保存草稿").click()
    # then the error names its path beside the editor, and what was typed is still there
    errors = page.locator(".editor__errors")
    errors.wait_for()
    assert "rules[0].pool.users[0]" in errors.inner_text() and "alise" in errors.inner_text()
    assert '"alise"' in page.locator("textarea[name=definition]").input_value()

    # fixing the typo saves the draft
    page.locator("textarea[name=definition]").fill(document.replace('"alise"', '"alice"'))
    page.get_by_role("button", name="保存草稿").click()
    page.wait_for_selector(".notice--success")
    assert "草稿已保存" in page.locator(".flash").inner_text()
    assert "广东给 Alice" in page.locator(".rules").inner_text()

    # simulating shows a progress bar that follows the worker until the report is ready
    page.get_by_role("button", name="模拟").click()
    progress = page.locator("#simulation .report-progress")
    progress.wait_for()
    assert progress.get_attribute("data-status") == "pending"
    report = RoutingReport.objects.get(ruleset=draft)
    replay_run(report_id=report.pk)  # the worker picks it up
    assert RoutingReport.objects.get(pk=report.pk).status == ReportStatus.DONE
    page.wait_for_selector('#simulation .report-progress[data-status="done"]')
    assert "12 / 12" in page.locator("#simulation").inner_text()
    page.locator("#simulation").get_by_role("link", name="查看报告").click()
    page.wait_for_url(f"{live_server.url}/routing/reports/{report.pk}/")

    # the report says in words what got worse, blocks on it, and shows where the leads went
    findings = page.locator(".findings")
    assert "阻止发布" in findings.inner_text() and "广东" in findings.inner_text()
    assert page.locator(".compare__row--block").count() >= 1
    flagged = page.locator(".heat__cell--flagged")
    assert flagged.count() == 1
    assert page.locator(".share-bars__rep--flagged").inner_text().startswith("Alice 王")
    assert broken == [f"422 {live_server.url}/routing/rulesets/{draft.pk}/"]  # the refused save only


def test_a_rep_reads_why_the_lead_is_theirs_on_a_phone(browser, live_server, transactional_db, org):
    lead = routed_lead(org)
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    log_in(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/leads/{lead.pk}/")
    section = page.locator("#lead-assignment")
    section.get_by_role("heading", name="为什么分给我").scroll_into_view_if_needed()
    assert section.get_by_role("heading", name="为什么分给我").is_visible()
    sentences = section.locator(".assignment__why li")
    assert sentences.count() >= 3
    assert re.search(r"Alice 王", sentences.last.inner_text())
    # readable: body-sized text, inside the screen, no sideways scrolling — also when expanded
    assert float(sentences.first.evaluate("li => parseFloat(getComputedStyle(li).fontSize)")) >= 15
    box = section.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    section.get_by_text("逐条规则的判断与每位候选人").click()
    assert section.locator(".trace__candidates .is-winner").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert section.locator("#reassign-form").count() == 0  # a rep does not hand leads out
    context.close()
