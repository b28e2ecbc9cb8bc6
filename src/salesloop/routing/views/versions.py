"""Pages of rule-set versions (C8.1, C8.3): the overview, one version in words with its editor,
publish, cancel, roll back, and starting the sandbox."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.timesince import timeuntil
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from salesloop.accounts.models import Region, User
from salesloop.core import clock
from salesloop.core.roles import is_admin
from salesloop.routing import ruleset as ruleset_doc
from salesloop.routing import sandbox, selectors, services
from salesloop.routing.forms import (
    ABTestForm,
    DefinitionForm,
    PublishForm,
    ReasonForm,
    ReplayForm,
)
from salesloop.routing.models import (
    ReportStatus,
    RuleSet,
    RuleSetStatus,
)
from salesloop.routing.views.common import (
    STRATEGY_HELP,
    STRATEGY_LABELS,
    _error_pairs,
    _focus_first_error,
    _render,
    _spread,
    _wants_fragment,
    may_read_reports,
    may_review,
    may_write,
    readable_rules,
)

ACTIVE_REPORT = (ReportStatus.PENDING, ReportStatus.RUNNING)


# --- versions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionRow:
    ruleset: RuleSet
    state: str  # in_force | scheduled | draft | superseded | rolled_back | cancelled
    state_label: str
    created_by: str
    published_by: str
    rolled_back_by: str
    countdown: str  # scheduled versions: how long until they take effect


def _state(ruleset: RuleSet, in_force_id: int | None, now: dt.datetime) -> tuple[str, str]:
    if ruleset.status == RuleSetStatus.DRAFT:
        return "draft", _("Draft")
    if ruleset.status == RuleSetStatus.ROLLED_BACK:
        return "rolled_back", _("Rolled back")
    if ruleset.status == RuleSetStatus.CANCELLED:
        return "cancelled", _("Cancelled")
    if ruleset.pk == in_force_id:
        return "in_force", _("In force")
    if ruleset.effective_at and ruleset.effective_at > now:
        return "scheduled", _("Scheduled")
    return "superseded", _("Superseded")


def _version_rows(rulesets: list[RuleSet], in_force_id: int | None, now: dt.datetime) -> list[VersionRow]:
    ids = {
        pk
        for r in rulesets
        for pk in (r.created_by_id, r.published_by_id, r.rolled_back_by_id)
        if pk is not None
    }
    names = {u.pk: str(u) for u in User.objects.filter(pk__in=ids)} if ids else {}
    rows = []
    for ruleset in rulesets:
        state, label = _state(ruleset, in_force_id, now)
        rows.append(
            VersionRow(
                ruleset=ruleset,
                state=state,
                state_label=label,
                created_by=names.get(ruleset.created_by_id or 0, ""),
                published_by=names.get(ruleset.published_by_id or 0, ""),
                rolled_back_by=names.get(ruleset.rolled_back_by_id or 0, ""),
                countdown=timeuntil(ruleset.effective_at, now, depth=2)
                if state == "scheduled" and ruleset.effective_at
                else "",
            )
        )
    return rows


def _overview_context(request: HttpRequest, *, rollback_form: ReasonForm | None = None) -> dict[str, Any]:
    user = request.user
    now = clock.now()
    in_force = services.ruleset_in_force(now)
    rows = _version_rows(selectors.rulesets_visible_to(user=user), in_force.pk if in_force else None, now)
    scheduled = sorted(
        (r for r in rows if r.state == "scheduled"), key=lambda r: r.ruleset.effective_at or now
    )
    context: dict[str, Any] = {
        "section": "versions",
        "current": next((r for r in rows if r.state == "in_force"), None),
        "scheduled": scheduled,
        "drafts": [r for r in rows if r.state == "draft"],
        "history": [r for r in rows if r.state in {"superseded", "rolled_back", "cancelled"}],
        "may_write": may_write(user),
        "may_review": may_review(user),
        "may_rollback": is_admin(user) and in_force is not None,
        "rollback_form": rollback_form or ReasonForm(),
    }
    if may_review(user):
        policy = services.policy_get()
        context |= {
            "policy": policy,
            "committee": [str(member) for member in policy.committee.order_by("username")],
        }
    if may_read_reports(user):
        context["ab_test"] = services.ab_test_running(now)  # one test runs at a time (sandbox)
    return context


@login_required
@require_GET
def overview_page(request: HttpRequest) -> HttpResponse:
    return _render(request, "routing/overview.html", _overview_context(request))


@login_required
@require_POST
def rollback_page(request: HttpRequest) -> HttpResponse:
    """C8.3: an admin takes the version in force out at once; the written reason is required."""
    if not is_admin(request.user):
        raise PermissionDenied("only administrators roll back routing rules")
    form = ReasonForm(request.POST)
    problems: list[str] = []
    if form.is_valid():
        try:
            rolled = services.ruleset_rollback(actor=request.user, reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            problems = _spread(form, exc)
        else:
            messages.success(
                request,
                _("v%(version)s is rolled back; the version before it is in force again.")
                % {"version": rolled.version},
            )
            return redirect("routing-overview")
    context = _overview_context(request, rollback_form=form) | {"rollback_problems": problems}
    return _render(request, "routing/overview.html", context, status=422)


STARTER_NAME = "按区域轮转"


def _starter_document() -> dict[str, Any]:
    """A first rule set when none exists: each lead to its region's reps in turns; leads without a
    region to the least loaded rep anywhere."""
    regions = list(Region.objects.order_by("code").values_list("code", flat=True))
    return {
        "name": STARTER_NAME,
        "defaults": {"respect_working_hours": True},
        "rules": [
            {
                "id": "by-region",
                "name": "按区域轮转",
                "priority": 10,
                "when": {},
                "pool": {"lead_region": True},
                "strategy": "round_robin",
            }
        ],
        "fallback": {
            "name": "兜底：负载最少",
            "pool": {"regions": regions} if regions else {"lead_region": True},
            "strategy": "least_loaded",
        },
    }


def _write_require(request: HttpRequest) -> None:
    if not may_write(request.user):
        raise PermissionDenied("only directors and administrators change routing rules")


def _ruleset_to_change(request: HttpRequest, ruleset_id: int) -> RuleSet:
    """The version a change is asked of: 404 where the user may not see it (drafts), else 403
    unless they may change routing rules."""
    ruleset = selectors.ruleset_get(user=request.user, ruleset_id=ruleset_id)
    _write_require(request)
    return ruleset


@login_required
@require_POST
def draft_new_page(request: HttpRequest) -> HttpResponse:
    """A new draft: a copy of the chosen version (by default the one in force), or a starter."""
    _write_require(request)
    based_on_id = request.POST.get("based_on", "")
    if based_on_id.isdigit() and len(based_on_id) < 19:
        based_on: RuleSet | None = selectors.ruleset_get(user=request.user, ruleset_id=int(based_on_id))
    else:
        based_on = services.ruleset_in_force()
    document = based_on.definition if based_on else _starter_document()
    try:
        draft = services.ruleset_create(actor=request.user, definition=document, based_on=based_on)
    except ValidationError:
        # The copied version names someone or something that no longer exists: start from the
        # document anyway would fail too, so offer the starter, which names only what exists.
        draft = services.ruleset_create(actor=request.user, definition=_starter_document(), based_on=None)
        messages.warning(
            request, _("The version could not be copied as it stands; the draft starts from a starter.")
        )
    messages.success(request, _("Draft v%(version)s created.") % {"version": draft.version})
    return redirect("routing-ruleset", ruleset_id=draft.pk)


# --- one version ----------------------------------------------------------------------------


def _pretty(value: Any, depth: int = 0) -> str:
    """JSON for people: a list of plain values, or a small object, on one line; the rest indented."""
    flat = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if not isinstance(value, dict | list) or not value:
        return flat
    children = value.values() if isinstance(value, dict) else value
    nested = any(
        (isinstance(item, dict) and item)
        or (isinstance(item, list) and any(isinstance(i, dict) for i in item))
        for item in children
    )
    if len(flat) <= 72 and not nested:
        return flat
    pad = "  " * (depth + 1)
    if isinstance(value, list):
        items = [pad + _pretty(item, depth + 1) for item in value]
        return "[\n" + ",\n".join(items) + "\n" + "  " * depth + "]"
    items = [
        f"{pad}{json.dumps(key, ensure_ascii=False)}: {_pretty(item, depth + 1)}"
        for key, item in value.items()
    ]
    return "{\n" + ",\n".join(items) + "\n" + "  " * depth + "}"


TOP_KEYS = ("name", "description", "defaults", "rules", "fallback")
RULE_KEYS = ("id", "name", "priority", "when", "pool", "strategy", "weights", "caps")


def _ordered(document: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: document[k] for k in keys if k in document} | {
        k: v for k, v in document.items() if k not in keys
    }


def editable_document(document: Any) -> str:
    """The stored document as a person would write it: defaults left out, keys in reading order
    (the stored one has every default spelled out, and PostgreSQL's jsonb keeps no key order).
    It parses to the same rule set."""
    try:
        parsed = ruleset_doc.parse(document)
    except ruleset_doc.RuleSetInvalid:
        return _pretty(document)
    lean = parsed.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    lean["rules"] = [_ordered(rule, RULE_KEYS) for rule in lean.get("rules", [])]
    lean["fallback"] = _ordered(lean["fallback"], RULE_KEYS)
    return _pretty(_ordered(lean, TOP_KEYS))


def _guide_example() -> str:
    """The example document of routing.ruleset's docstring (the documented format)."""
    doc = ruleset_doc.__doc__ or ""
    start = doc.find("```json")
    end = doc.find("```", start + 7)
    return doc[start + 7 : end].strip() if start >= 0 and end > start else ""


def _document_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """The service's errors as (path in the document, message): `definition.rules[1].pool` →
    `rules[1].pool`; the whole document is `(document)`."""
    errors = []
    for key, message in _error_pairs(exc):
        if key == "definition":
            errors.append(("(document)", message))
        elif key.startswith("definition."):
            errors.append((key.removeprefix("definition."), message))
        else:
            errors.append((key or "(document)", message))
    return errors


@dataclass
class RulesetForms:
    editor: DefinitionForm | None = None
    editor_errors: list[tuple[str, str]] = field(default_factory=list)
    publish: PublishForm | None = None
    publish_problems: list[str] = field(default_factory=list)
    cancel: ReasonForm | None = None
    cancel_problems: list[str] = field(default_factory=list)
    replay: ReplayForm | None = None
    ab: ABTestForm | None = None
    sandbox_problems: list[str] = field(default_factory=list)


def _ruleset_context(
    request: HttpRequest, ruleset: RuleSet, forms: RulesetForms | None = None
) -> dict[str, Any]:
    user = request.user
    forms = forms or RulesetForms()
    now = clock.now()
    in_force = services.ruleset_in_force(now)
    row = _version_rows([ruleset], in_force.pk if in_force else None, now)[0]
    writable = may_write(user)
    is_draft = ruleset.status == RuleSetStatus.DRAFT
    context: dict[str, Any] = {
        "section": "versions",
        "row": row,
        "ruleset": ruleset,
        "readable": readable_rules(ruleset.definition),
        "may_write": writable,
        "may_review": may_review(user),
        "may_read_reports": may_read_reports(user),
        "forms": forms,
    }
    if may_read_reports(user):
        reports = sandbox.reports_visible_to(user=user, ruleset_id=ruleset.pk, limit=20)
        context |= {
            "reports": reports,
            "active_report": next(
                (r for r in reports if r.status in ACTIVE_REPORT and r.kind == "replay"), None
            ),
        }
    context["editing"] = writable and is_draft
    if not context["editing"]:
        # A hand-made POST against a version that is not an editable draft: say why, on top.
        context["stray_problems"] = [
            *(f"{path}: {message}" for path, message in forms.editor_errors),
            *forms.publish_problems,
            *forms.sandbox_problems,
        ]
    if writable and is_draft:
        policy = services.policy_get()
        latest = services.latest_replay(ruleset)
        context |= {
            "policy": policy,
            "latest_replay": latest,
            "document": editable_document(ruleset.definition),
            "guide_example": _guide_example(),
            "region_codes": list(Region.objects.order_by("code").values_list("code", "name")),
            "strategies": [(code, STRATEGY_LABELS[code], STRATEGY_HELP[code]) for code in STRATEGY_LABELS],
            "schema": json.dumps(ruleset_doc.json_schema(), ensure_ascii=False, indent=2),
        }
        forms.editor = forms.editor or DefinitionForm(initial={"definition": context["document"]})
        forms.publish = forms.publish or PublishForm(
            earliest=now + dt.timedelta(hours=policy.notice_hours),
            needs_override=bool(latest and latest.worse),
        )
        forms.replay = forms.replay or ReplayForm(initial={"days": policy.replay_days})
        forms.ab = forms.ab or ABTestForm(
            initial={"share_percent": f"{float(policy.ab_share) * 100:g}", "days": sandbox.AB_DEFAULT_DAYS}
        )
    if writable and row.state == "scheduled":
        forms.cancel = forms.cancel or ReasonForm()
    return context


@login_required
@require_http_methods(["GET", "POST"])
def ruleset_page(request: HttpRequest, ruleset_id: int) -> HttpResponse:
    """A version's rules in words; for a draft, the JSON editor (POST saves it)."""
    ruleset = selectors.ruleset_get(user=request.user, ruleset_id=ruleset_id)  # drafts: 404 to others
    if request.method == "GET":
        return _render(request, "routing/ruleset.html", _ruleset_context(request, ruleset))
    _write_require(request)
    form = DefinitionForm(request.POST)
    errors: list[tuple[str, str]] = []
    if form.is_valid():
        try:
            services.ruleset_update(
                actor=request.user, ruleset=ruleset, definition=form.cleaned_data["definition"]
            )
        except ValidationError as exc:
            errors = _document_errors(exc)
        else:
            messages.success(request, _("Draft saved."))
            return redirect("routing-ruleset", ruleset_id=ruleset.pk)
    else:
        errors = [("(document)", str(message)) for message in form.errors.get("definition", [])]
    # Re-render with exactly what was typed: nothing a person wrote is lost to an error. The
    # editor takes the focus, so the page opens where the errors are listed.
    form.fields["definition"].widget.attrs["autofocus"] = True
    forms = RulesetForms(editor=form, editor_errors=errors)
    return _render(request, "routing/ruleset.html", _ruleset_context(request, ruleset, forms), status=422)


@login_required
@require_POST
def publish_page(request: HttpRequest, ruleset_id: int) -> HttpResponse:
    ruleset = _ruleset_to_change(request, ruleset_id)
    policy = services.policy_get()
    latest = services.latest_replay(ruleset)
    form = PublishForm(
        request.POST,
        earliest=clock.now() + dt.timedelta(hours=policy.notice_hours),
        needs_override=bool(latest and latest.worse),
    )
    problems: list[str] = []
    if form.is_valid():
        try:
            published = services.ruleset_publish(
                actor=request.user,
                ruleset=ruleset,
                effective_at=form.cleaned_data["effective_at"],
                note=form.cleaned_data["note"],
                override_reason=form.override(),
            )
        except ValidationError as exc:
            problems = _spread(form, exc)
        else:
            messages.success(
                request,
                _(
                    "v%(version)s is published; it takes effect on %(when)s. "
                    "The sales committee has the report."
                )
                % {
                    "version": published.version,
                    "when": f"{published.effective_at.astimezone(clock.org_tz()):%Y-%m-%d %H:%M}"
                    if published.effective_at
                    else "",
                },
            )
            return redirect("routing-overview")
    _focus_first_error(form)
    forms = RulesetForms(publish=form, publish_problems=problems)
    return _render(request, "routing/ruleset.html", _ruleset_context(request, ruleset, forms), status=422)


@login_required
@require_POST
def cancel_page(request: HttpRequest, ruleset_id: int) -> HttpResponse:
    """Withdraw a scheduled version before it takes effect, with the reason."""
    ruleset = _ruleset_to_change(request, ruleset_id)
    form = ReasonForm(request.POST)
    problems: list[str] = []
    if form.is_valid():
        try:
            services.ruleset_cancel(actor=request.user, ruleset=ruleset, reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            problems = _spread(form, exc)
        else:
            messages.success(request, _("v%(version)s is withdrawn.") % {"version": ruleset.version})
            return redirect("routing-overview")
    ruleset.refresh_from_db()
    forms = RulesetForms(cancel=form, cancel_problems=problems)
    return _render(request, "routing/ruleset.html", _ruleset_context(request, ruleset, forms), status=422)


def _sandbox_start(request: HttpRequest, ruleset_id: int, kind: str) -> HttpResponse:
    ruleset = _ruleset_to_change(request, ruleset_id)
    form: ReplayForm | ABTestForm = ReplayForm(request.POST) if kind == "replay" else ABTestForm(request.POST)
    problems: list[str] = []
    if form.is_valid():
        try:
            if isinstance(form, ReplayForm):
                report = sandbox.simulate_start(
                    actor=request.user, ruleset=ruleset, days=form.cleaned_data["days"]
                )
            else:
                report = sandbox.ab_test_start(
                    actor=request.user, ruleset=ruleset, share=form.share(), days=form.cleaned_data["days"]
                )
        except ValidationError as exc:
            problems = _spread(form, exc)
        else:
            if kind == "replay" and _wants_fragment(request):
                return _render(request, "routing/_report_progress.html", {"report": report, "started": True})
            return redirect("routing-report", report_id=report.pk)
    forms = RulesetForms(sandbox_problems=problems)
    if isinstance(form, ReplayForm):
        forms.replay = form
    else:
        forms.ab = form
    return _render(request, "routing/ruleset.html", _ruleset_context(request, ruleset, forms), status=422)


@login_required
@require_POST
def simulate_page(request: HttpRequest, ruleset_id: int) -> HttpResponse:
    """C8.4(a): replay the past window's leads through the draft, in the background."""
    return _sandbox_start(request, ruleset_id, "replay")


@login_required
@require_POST
def ab_test_page(request: HttpRequest, ruleset_id: int) -> HttpResponse:
    """C8.4(b): route a share of new leads by the draft for a set period."""
    return _sandbox_start(request, ruleset_id, "ab")
