"""Pipeline pages (SPEC C10.2): the list, one pipeline with its version in force and its draft
editor, and the actions (copy, open/save/discard a draft, publish). Everyone signed in may read;
administrators and sales directors edit. The bulk move from the lead list posts here too."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from salesloop.core.roles import Role
from salesloop.crm.models import LeadStatus
from salesloop.pipeline import editor
from salesloop.pipeline.models import Pipeline, PipelineVersion, Stage, VersionStatus
from salesloop.pipeline.requirements import BUILTIN_FIELDS, custom_field_labels, requirement_labels
from salesloop.pipeline.services import BULK_MOVE_LIMIT, leads_move_bulk


def _english() -> bool:
    return (translation.get_language() or "zh-hans").startswith("en")


def _require_editor(user: Any) -> None:
    if not editor.pipeline_may_edit(user):
        raise PermissionDenied("only administrators and sales directors edit pipelines")


@dataclass(frozen=True)
class StageView:
    position: int
    code: str
    label: str
    requirements: list[str]  # each requirement in words
    requirements_json: str


def _stage_views(stages: list[Stage]) -> list[StageView]:
    custom = custom_field_labels()
    english = _english()
    views = []
    for stage in stages:
        words = []
        for item in stage.requirements or []:
            zh, en = requirement_labels(item, custom)
            kind = _("attachment") if item.get("type") == "attachment" else _("field")
            words.append(f"{en if english else zh} ({kind})")
        views.append(
            StageView(
                position=stage.position,
                code=stage.code,
                label=stage.label("en" if english else "zh"),
                requirements=words,
                requirements_json=json.dumps(stage.requirements or [], ensure_ascii=False),
            )
        )
    return views


@login_required
@require_GET
def pipeline_list_page(request: HttpRequest) -> HttpResponse:
    pipelines = list(Pipeline.objects.order_by("id").prefetch_related("versions"))
    rows = []
    for pipeline in pipelines:
        versions = list(pipeline.versions.all())
        rows.append(
            {
                "pipeline": pipeline,
                "live": next((v for v in versions if v.status == VersionStatus.LIVE), None),
                "draft": next((v for v in versions if v.status == VersionStatus.DRAFT), None),
            }
        )
    return render(
        request,
        "pipeline/pipeline_list.html",
        {"rows": rows, "may_edit": editor.pipeline_may_edit(request.user)},
    )


def _detail_context(request: HttpRequest, pipeline: Pipeline, **extra: Any) -> dict[str, Any]:
    versions = list(pipeline.versions.order_by("-number").select_related("published_by"))
    live = next((v for v in versions if v.status == VersionStatus.LIVE), None)
    draft = next((v for v in versions if v.status == VersionStatus.DRAFT), None)
    draft_rows = extra.pop("draft_rows", None)
    if draft is not None and draft_rows is None:
        draft_rows = [
            {
                "code": s.code,
                "name": s.name,
                "name_en": s.name_en,
                "position": s.position,
                "requirements": json.dumps(s.requirements or [], ensure_ascii=False, indent=1),
            }
            for s in draft.stages.order_by("position")
        ]
    if draft_rows is not None:
        draft_rows = [
            *draft_rows,
            {"code": "", "name": "", "name_en": "", "position": "", "requirements": "[]"},
        ]
    return {
        "pipeline": pipeline,
        "live": live,
        "live_stages": _stage_views(list(live.stages.order_by("position"))) if live else [],
        "draft": draft,
        "draft_name": extra.pop("draft_name", draft.name if draft else ""),
        "draft_rows": draft_rows or [],
        "versions": versions,
        "may_edit": editor.pipeline_may_edit(request.user),
        "fields": [(path, en if _english() else zh) for path, (zh, en) in BUILTIN_FIELDS.items()],
        "custom_fields": [
            (path, en if _english() else zh) for path, (zh, en) in custom_field_labels().items()
        ],
        "problems": [],
        **extra,
    }


@login_required
@require_GET
def pipeline_detail_page(request: HttpRequest, pipeline_id: int) -> HttpResponse:
    pipeline = get_object_or_404(Pipeline, pk=pipeline_id)
    return render(request, "pipeline/pipeline_detail.html", _detail_context(request, pipeline))


def _problems(exc: ValidationError) -> list[str]:
    if hasattr(exc, "error_dict"):
        return [f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()]
    return list(exc.messages)


@login_required
@require_POST
def pipeline_copy_page(request: HttpRequest, pipeline_id: int) -> HttpResponse:
    _require_editor(request.user)
    source = get_object_or_404(Pipeline, pk=pipeline_id)
    try:
        pipeline = editor.pipeline_copy(
            actor=request.user,
            source=source,
            code=request.POST.get("code", "").strip(),
            name=request.POST.get("name", "").strip(),
        )
    except ValidationError as exc:
        for problem in _problems(exc):
            messages.error(request, problem)
        return redirect("pipeline-detail", pipeline_id=source.pk)
    messages.success(request, _("Copied. Edit the draft, then publish it."))
    return redirect("pipeline-detail", pipeline_id=pipeline.pk)


@login_required
@require_POST
def draft_open_page(request: HttpRequest, pipeline_id: int) -> HttpResponse:
    _require_editor(request.user)
    pipeline = get_object_or_404(Pipeline, pk=pipeline_id)
    editor.pipeline_draft_open(actor=request.user, pipeline=pipeline)
    return redirect("pipeline-detail", pipeline_id=pipeline.pk)


def _draft_of(pipeline: Pipeline) -> PipelineVersion:
    from django.http import Http404

    draft = pipeline.versions.filter(status=VersionStatus.DRAFT).first()
    if draft is None:
        raise Http404("no draft")
    return draft


def _posted_rows(post: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """The editor's rows as posted (to show again) and the stages they make, in position order."""
    rows, stages, problems = [], [], []
    count = min(int(post.get("rows", "0") or 0) if str(post.get("rows", "0")).isdigit() else 0, 50)
    for i in range(count):
        row = {
            "code": post.get(f"code-{i}", "").strip(),
            "name": post.get(f"name-{i}", "").strip(),
            "name_en": post.get(f"name_en-{i}", "").strip(),
            "position": post.get(f"position-{i}", "").strip(),
            "requirements": post.get(f"requirements-{i}", "").strip() or "[]",
            "remove": bool(post.get(f"remove-{i}")),
        }
        if row["remove"] or not (row["code"] or row["name"]):
            if not row["remove"]:
                continue  # the empty "new stage" row
            rows.append(row)
            continue
        rows.append(row)
        try:
            requirements = json.loads(row["requirements"])
        except ValueError as exc:
            problems.append(
                _("%(stage)s: the requirements are not valid JSON (%(error)s)")
                % {"stage": row["code"] or row["name"], "error": exc}
            )
            requirements = []
        try:
            position = float(row["position"]) if row["position"] else 1000.0 + i
        except ValueError:
            position = 1000.0 + i
        stages.append(
            (
                position,
                i,
                {
                    "code": row["code"],
                    "name": row["name"],
                    "name_en": row["name_en"],
                    "requirements": requirements,
                },
            )
        )
    ordered = [stage for _, _, stage in sorted(stages, key=lambda t: (t[0], t[1]))]
    return [r for r in rows if not r["remove"]], ordered, problems


@login_required
@require_POST
def draft_save_page(request: HttpRequest, pipeline_id: int) -> HttpResponse:
    _require_editor(request.user)
    pipeline = get_object_or_404(Pipeline, pk=pipeline_id)
    draft = _draft_of(pipeline)
    rows, stages, problems = _posted_rows(request.POST)
    name = request.POST.get("name", "").strip()
    if not problems:
        try:
            editor.pipeline_draft_save(actor=request.user, draft=draft, name=name, stages=stages)
        except ValidationError as exc:
            problems = [_path_in_words(p, stages) for p in _problems(exc)]
    if problems:
        context = _detail_context(request, pipeline, draft_rows=rows, draft_name=name, problems=problems)
        return render(request, "pipeline/pipeline_detail.html", context, status=422)
    messages.success(request, _("Draft saved."))
    return redirect("pipeline-detail", pipeline_id=pipeline.pk)


def _path_in_words(problem: str, stages: list[dict[str, Any]]) -> str:
    """`stages[2].requirements[0].field: …` says which stage by its code too."""
    if problem.startswith("stages[") and "]" in problem:
        index = problem[len("stages[") : problem.index("]")]
        if index.isdigit() and int(index) < len(stages):
            code = stages[int(index)].get("code") or stages[int(index)].get("name") or ""
            return f"{code} · {problem}"
    return problem


@login_required
@require_POST
def draft_discard_page(request: HttpRequest, pipeline_id: int) -> HttpResponse:
    _require_editor(request.user)
    pipeline = get_object_or_404(Pipeline, pk=pipeline_id)
    editor.pipeline_draft_discard(actor=request.user, draft=_draft_of(pipeline))
    messages.success(request, _("Draft discarded."))
    return redirect("pipeline-detail", pipeline_id=pipeline.pk)


@login_required
@require_POST
def publish_page(request: HttpRequest, pipeline_id: int) -> HttpResponse:
    _require_editor(request.user)
    pipeline = get_object_or_404(Pipeline, pk=pipeline_id)
    try:
        version = editor.pipeline_publish(actor=request.user, draft=_draft_of(pipeline))
    except ValidationError as exc:
        for problem in _problems(exc):
            messages.error(request, problem)
    else:
        messages.success(
            request, _("Version %(number)s is in force from now on.") % {"number": version.number}
        )
    return redirect("pipeline-detail", pipeline_id=pipeline.pk)


# --- bulk move from the lead list ----------------------------------------------------------------


class BulkMoveForm(forms.Form):
    lead_ids = forms.CharField(label=gettext_lazy("Leads"))
    to_stage = forms.CharField(label=gettext_lazy("Stage"), required=False, max_length=40)
    to_status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        required=False,
        choices=[("", "—"), (LeadStatus.WON, LeadStatus.WON.label), (LeadStatus.LOST, LeadStatus.LOST.label)],
    )
    reason = forms.CharField(label=gettext_lazy("Reason"), required=False, max_length=200)

    def clean_lead_ids(self) -> list[int]:
        raw = self.data.getlist("lead_ids") if hasattr(self.data, "getlist") else [self.data.get("lead_ids")]
        ids = []
        for part in ",".join(str(r) for r in raw if r).split(","):
            part = part.strip()
            if not part:
                continue
            if not part.isdigit() or not 0 < int(part) < 2**63:
                raise ValidationError(_("Lead ids are numbers."))
            ids.append(int(part))
        if not ids:
            raise ValidationError(_("Choose at least one lead."))
        if len(ids) > BULK_MOVE_LIMIT:
            raise ValidationError(_("At most %(n)s leads at a time.") % {"n": BULK_MOVE_LIMIT})
        return ids


@login_required
@require_POST
def bulk_move_page(request: HttpRequest) -> HttpResponse:
    """C2.2 bulk action: moves what passes, lists per lead what was refused and why."""
    if request.user.role == Role.PRODUCT_MANAGER and not request.user.is_superuser:
        raise PermissionDenied("product managers review leads, they do not move them")
    form = BulkMoveForm(request.POST)
    results, problems = [], []
    if form.is_valid():
        data = form.cleaned_data
        try:
            outcome = leads_move_bulk(
                actor=request.user,
                lead_ids=data["lead_ids"],
                to_stage_code=data["to_stage"] or None,
                status=data["to_status"] or None,
                reason=data["reason"],
            )
        except ValidationError as exc:
            problems = _problems(exc)
        else:
            english = _english()
            for result in outcome:
                results.append(
                    {
                        "lead_id": result.lead_id,
                        "moved": result.moved,
                        "problems": [
                            (p.get("label_en" if english else "label_zh") and _missing_text(p, english))
                            or p.get("message", "")
                            for p in result.problems
                        ],
                    }
                )
    else:
        problems = [
            f"{form.fields[f].label}: {' '.join(e)}" for f, e in form.errors.items() if f in form.fields
        ]
    moved = sum(1 for r in results if r["moved"])
    return render(
        request,
        "pipeline/bulk_result.html",
        {"results": results, "moved": moved, "refused": len(results) - moved, "problems": problems},
        status=422 if problems else 200,
    )


def _missing_text(problem: dict[str, str], english: bool) -> str:
    label = problem.get("label_en" if english else "label_zh", "")
    if problem.get("code") == "missing_attachment":
        return _("%(stage)s needs %(item)s (an attachment)") % {
            "stage": problem.get("stage", ""),
            "item": label,
        }
    return _("%(stage)s needs %(item)s (a field)") % {"stage": problem.get("stage", ""), "item": label}
