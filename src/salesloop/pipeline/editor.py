"""The pipeline editor (SPEC C10.2): drafts, copies and publishing. Every change is audited.

A pipeline's stages are edited as one document on its draft version — name, and the stages in
order, each with code, labels and entry requirements — so adding, removing and reordering stages
are one save, validated as a whole with each error named by its path (`stages[2].requirements[1]
.field`). Publishing makes the draft the version in force at once: every read of the stages goes to
the database (`Stage.pipeline` marks the rows in force), so no process holds an old copy.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from salesloop.core import clock
from salesloop.core.audit import audit_record
from salesloop.pipeline.models import Pipeline, PipelineVersion, Stage, VersionStatus
from salesloop.pipeline.requirements import custom_field_labels, requirements_validate

CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,39}$")
MAX_STAGES = 12
EDITOR_ROLES = frozenset({"admin", "director"})


def pipeline_may_edit(user: Any) -> bool:
    """Only administrators and sales directors change pipelines."""
    return bool(getattr(user, "is_superuser", False)) or getattr(user, "role", "") in EDITOR_ROLES


def _require_editor(actor: Any) -> None:
    if not pipeline_may_edit(actor):
        raise PermissionDenied("only administrators and sales directors edit pipelines")


def version_document(version: PipelineVersion, stages: list[Stage] | None = None) -> dict[str, Any]:
    """A version as the editor and the audit log see it."""
    rows = stages if stages is not None else list(version.stages.order_by("position"))
    return {
        "version": version.number,
        "status": version.status,
        "name": version.name,
        "stages": [
            {"code": s.code, "name": s.name, "name_en": s.name_en, "requirements": s.requirements}
            for s in rows
        ],
    }


def _stages_clean(stages: Any) -> list[dict[str, Any]]:
    """The stages of a document, validated; every problem at once, keyed by its path."""
    if not isinstance(stages, list):
        raise ValidationError({"stages": "a list of stages"})
    if not 2 <= len(stages) <= MAX_STAGES:
        raise ValidationError({"stages": f"between 2 and {MAX_STAGES} stages: a first one and a won one"})
    custom = custom_field_labels()
    errors: dict[str, Any] = {}
    clean, codes = [], set()
    for i, stage in enumerate(stages):
        at = f"stages[{i}]"
        if not isinstance(stage, dict):
            errors[at] = "an object with code, name, name_en and requirements"
            continue
        for extra in sorted(set(stage) - {"code", "name", "name_en", "requirements"}):
            errors[f"{at}.{extra}"] = "unknown key"
        code = stage.get("code")
        if not isinstance(code, str) or not CODE_RE.match(code):
            errors[f"{at}.code"] = "lower-case letters, digits and _, at most 40, e.g. solution_demo"
        elif code in codes:
            errors[f"{at}.code"] = f"{code!r} is used twice"
        else:
            codes.add(code)
        name = stage.get("name")
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > 40:
            errors[f"{at}.name"] = "the Chinese name, 1 to 40 characters"
        name_en = stage.get("name_en", "")
        if not isinstance(name_en, str) or len(name_en.strip()) > 60:
            errors[f"{at}.name_en"] = "the English name, at most 60 characters"
            name_en = ""
        requirements: list[dict[str, str]] = []
        try:
            requirements = requirements_validate(
                stage.get("requirements", []), path=f"{at}.requirements", first_stage=i == 0, custom=custom
            )
        except ValidationError as exc:
            errors.update({key: " ".join(messages) for key, messages in exc.message_dict.items()})
        clean.append(
            {
                "code": code,
                "name": name.strip() if isinstance(name, str) else "",
                "name_en": name_en.strip(),
                "requirements": requirements,
            }
        )
    if errors:
        raise ValidationError(errors)
    return clean


def _name_clean(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 80:
        raise ValidationError({"name": "the pipeline's name, 1 to 80 characters"})
    return name.strip()


def _stages_write(version: PipelineVersion, stages: list[dict[str, Any]]) -> list[Stage]:
    """A draft's stage rows replaced (no lead or move can point at a draft's stages)."""
    version.stages.all().delete()
    return Stage.objects.bulk_create(
        [
            Stage(
                version=version,
                pipeline=None,
                code=s["code"],
                name=s["name"],
                name_en=s["name_en"],
                position=i,
                requirements=s["requirements"],
            )
            for i, s in enumerate(stages, start=1)
        ]
    )


def pipeline_version_live(pipeline: Pipeline) -> PipelineVersion | None:
    return pipeline.versions.filter(status=VersionStatus.LIVE).first()


@transaction.atomic
def pipeline_draft_open(*, actor: Any, pipeline: Pipeline) -> PipelineVersion:
    """The pipeline's draft, made from the version in force if there is none yet (SPEC C10.2)."""
    _require_editor(actor)
    Pipeline.objects.select_for_update().get(pk=pipeline.pk)
    draft = pipeline.versions.filter(status=VersionStatus.DRAFT).first()
    if draft is not None:
        return draft
    live = pipeline_version_live(pipeline)
    latest = pipeline.versions.order_by("-number").first()
    draft = PipelineVersion.objects.create(
        pipeline=pipeline,
        number=(latest.number if latest else 0) + 1,
        status=VersionStatus.DRAFT,
        name=live.name if live else pipeline.name,
        based_on=live,
    )
    document = version_document(live) if live else {"stages": []}
    if document["stages"]:
        _stages_write(draft, document["stages"])
    audit_record(
        actor=actor,
        action="pipeline.draft_open",
        target=draft,
        before=None,
        after=version_document(draft),
    )
    return draft


@transaction.atomic
def pipeline_draft_save(*, actor: Any, draft: PipelineVersion, name: Any, stages: Any) -> PipelineVersion:
    """Rename the draft and set its stages — add, remove, reorder, labels, requirements — in one go.

    Rules: 2 to 12 stages; codes unique; the first stage has no requirements (every creation path
    puts new leads there); the last stage is the won stage. Published versions cannot change."""
    _require_editor(actor)
    draft = PipelineVersion.objects.select_for_update().get(pk=draft.pk)
    if draft.status != VersionStatus.DRAFT:
        raise ValidationError({"version": "a published version never changes; open a new draft"})
    before = version_document(draft)
    clean_name = _name_clean(name)
    clean_stages = _stages_clean(stages)
    draft.name = clean_name
    draft.updated_at = clock.now()
    draft.save(update_fields=["name", "updated_at"])
    _stages_write(draft, clean_stages)
    audit_record(
        actor=actor, action="pipeline.draft_save", target=draft, before=before, after=version_document(draft)
    )
    return draft


@transaction.atomic
def pipeline_draft_discard(*, actor: Any, draft: PipelineVersion) -> None:
    _require_editor(actor)
    if draft.status != VersionStatus.DRAFT:
        raise ValidationError({"version": "only a draft can be discarded"})
    before = version_document(draft)
    audit_record(actor=actor, action="pipeline.draft_discard", target=draft, before=before, after=None)
    draft.delete()


@transaction.atomic
def pipeline_publish(*, actor: Any, draft: PipelineVersion) -> PipelineVersion:
    """Put the draft in force now (SPEC C10.2): new leads enter its first stage and every move from
    now on goes to its stages; leads stay on the stage rows they were moved to until they move."""
    _require_editor(actor)
    pipeline = Pipeline.objects.select_for_update().get(pk=draft.pipeline_id)
    draft = PipelineVersion.objects.select_for_update().get(pk=draft.pk)
    if draft.status != VersionStatus.DRAFT:
        raise ValidationError({"version": "this version is already published"})
    # Valid when saved, but a custom field it names may have been archived since.
    _stages_clean(version_document(draft)["stages"])
    live = pipeline_version_live(pipeline)
    before = version_document(live) if live else None
    now = clock.now()
    if live is not None:
        Stage.objects.filter(version=live).update(pipeline=None)
        live.status = VersionStatus.RETIRED
        live.updated_at = now
        live.save(update_fields=["status", "updated_at"])
    Stage.objects.filter(version=draft).update(pipeline=pipeline)
    draft.status = VersionStatus.LIVE
    draft.published_at = now
    draft.published_by = actor if getattr(actor, "pk", None) else None
    draft.updated_at = now
    draft.save(update_fields=["status", "published_at", "published_by", "updated_at"])
    pipeline.name = draft.name
    pipeline.updated_at = now
    pipeline.save(update_fields=["name", "updated_at"])
    after = version_document(draft)
    audit_record(actor=actor, action="pipeline.publish", target=pipeline, before=before, after=after)
    return draft


@transaction.atomic
def pipeline_copy(*, actor: Any, source: Pipeline, code: Any, name: Any) -> Pipeline:
    """A new pipeline whose first draft copies the source's version in force (or its draft)."""
    _require_editor(actor)
    if not isinstance(code, str) or not CODE_RE.match(code):
        raise ValidationError({"code": "lower-case letters, digits and _, at most 40"})
    if Pipeline.objects.filter(code=code).exists():
        raise ValidationError({"code": f"a pipeline {code!r} exists already"})
    clean_name = _name_clean(name)
    origin = pipeline_version_live(source) or source.versions.filter(status=VersionStatus.DRAFT).first()
    pipeline = Pipeline.objects.create(code=code, name=clean_name, is_default=False)
    draft = PipelineVersion.objects.create(
        pipeline=pipeline, number=1, status=VersionStatus.DRAFT, name=clean_name, based_on=origin
    )
    if origin is not None:
        _stages_write(draft, version_document(origin)["stages"])
    audit_record(
        actor=actor,
        action="pipeline.copy",
        target=pipeline,
        before={"copied_from": source.code, "version": origin.number if origin else None},
        after=version_document(draft),
    )
    return pipeline
