"""REST endpoints of the pipeline editor (SPEC C10.2): read pipelines and their versions, copy one,
open, save and discard a draft, publish it. Reading is open to every signed-in user (the stages are
what every lead page shows); changing is for administrators and sales directors."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema, Status

from salesloop.core.schemas import RecordId, Text
from salesloop.pipeline import editor
from salesloop.pipeline.models import Pipeline, PipelineVersion, VersionStatus
from salesloop.pipeline.requirements import BUILTIN_FIELDS, custom_field_labels

router = Router()


class StageDoc(Schema):
    code: Text(40) = Field(
        description="stable identifier, e.g. solution_demo; leads map by it across versions"
    )  # type: ignore[valid-type]
    name: Text(40) = Field(description="Chinese name, shown by default")  # type: ignore[valid-type]
    name_en: Text(60) = ""  # type: ignore[valid-type]
    requirements: list[dict[str, Any]] = Field(
        default_factory=list,
        description='entry requirements, e.g. [{"type": "field", "field": "expected_amount"}, '
        '{"type": "attachment", "kind": "pain_points", "label_zh": "痛点清单", '
        '"label_en": "Pain-point list"}]'
        " — see docs/pipelines.md and GET /pipelines/requirement-fields",
    )


class VersionOut(Schema):
    id: int
    number: int
    status: str
    name: str
    published_at: dt.datetime | None
    published_by_id: int | None
    based_on_id: int | None
    stages: list[StageDoc]


class PipelineOut(Schema):
    id: int
    code: str
    name: str
    is_default: bool
    live: VersionOut | None = Field(description="the version in force")
    draft: VersionOut | None
    versions: list[int] = Field(description="every version number, oldest first")


class DraftIn(Schema):
    name: Text(80)  # type: ignore[valid-type]
    stages: list[StageDoc] = Field(description="every stage in order; the last one is the won stage")


class CopyIn(Schema):
    code: Text(40)  # type: ignore[valid-type]
    name: Text(80)  # type: ignore[valid-type]


class FieldOut(Schema):
    path: str
    label_zh: str
    label_en: str


def _version_out(version: PipelineVersion | None) -> VersionOut | None:
    if version is None:
        return None
    document = editor.version_document(version)
    return VersionOut(
        id=version.pk,
        number=version.number,
        status=version.status,
        name=version.name,
        published_at=version.published_at,
        published_by_id=version.published_by_id,
        based_on_id=version.based_on_id,
        stages=[StageDoc(**stage) for stage in document["stages"]],
    )


def _pipeline_out(pipeline: Pipeline) -> PipelineOut:
    versions = list(pipeline.versions.order_by("number"))
    return PipelineOut(
        id=pipeline.pk,
        code=pipeline.code,
        name=pipeline.name,
        is_default=pipeline.is_default,
        live=_version_out(next((v for v in versions if v.status == VersionStatus.LIVE), None)),
        draft=_version_out(next((v for v in versions if v.status == VersionStatus.DRAFT), None)),
        versions=[v.number for v in versions],
    )


def _draft(pipeline: Pipeline) -> PipelineVersion:
    from django.http import Http404

    draft = pipeline.versions.filter(status=VersionStatus.DRAFT).first()
    if draft is None:
        raise Http404("no draft: open one with POST /pipelines/{id}/draft")
    return draft


def _editor(request: HttpRequest) -> Any:
    user = request.auth  # type: ignore[attr-defined]
    if not editor.pipeline_may_edit(user):
        raise PermissionDenied("only administrators and sales directors edit pipelines")
    return user


@router.get("", response=list[PipelineOut], summary="Pipelines with their version in force and draft")
def pipeline_list(request: HttpRequest) -> list[PipelineOut]:
    return [_pipeline_out(p) for p in Pipeline.objects.order_by("id")]


@router.get("/requirement-fields", response=list[FieldOut], summary="Field paths a requirement may name")
def requirement_fields(request: HttpRequest) -> list[FieldOut]:
    paths = {**BUILTIN_FIELDS, **custom_field_labels()}
    return [FieldOut(path=path, label_zh=zh, label_en=en) for path, (zh, en) in paths.items()]


@router.get("/{pipeline_id}", response=PipelineOut, summary="A pipeline, its version in force and its draft")
def pipeline_get(request: HttpRequest, pipeline_id: RecordId) -> PipelineOut:
    return _pipeline_out(get_object_or_404(Pipeline, pk=pipeline_id))


@router.post("/{pipeline_id}/copy", response={201: PipelineOut}, summary="Copy a pipeline into a new one")
def pipeline_copy(request: HttpRequest, pipeline_id: RecordId, payload: CopyIn) -> Status[PipelineOut]:
    user = _editor(request)
    source = get_object_or_404(Pipeline, pk=pipeline_id)
    pipeline = editor.pipeline_copy(actor=user, source=source, code=payload.code, name=payload.name)
    return Status(201, _pipeline_out(pipeline))


@router.post(
    "/{pipeline_id}/draft", response={201: VersionOut}, summary="Open a draft from the version in force"
)
def draft_open(request: HttpRequest, pipeline_id: RecordId) -> Status[VersionOut]:
    user = _editor(request)
    pipeline = get_object_or_404(Pipeline, pk=pipeline_id)
    return Status(201, _version_out(editor.pipeline_draft_open(actor=user, pipeline=pipeline)))


@router.put("/{pipeline_id}/draft", response=VersionOut, summary="Rename the draft and set its stages")
def draft_save(request: HttpRequest, pipeline_id: RecordId, payload: DraftIn) -> VersionOut:
    user = _editor(request)
    draft = _draft(get_object_or_404(Pipeline, pk=pipeline_id))
    stages = [stage.dict() for stage in payload.stages]
    saved = editor.pipeline_draft_save(actor=user, draft=draft, name=payload.name, stages=stages)
    return _version_out(saved)  # type: ignore[return-value]


@router.delete("/{pipeline_id}/draft", response={204: None}, summary="Discard the draft")
def draft_discard(request: HttpRequest, pipeline_id: RecordId) -> Status[None]:
    user = _editor(request)
    editor.pipeline_draft_discard(actor=user, draft=_draft(get_object_or_404(Pipeline, pk=pipeline_id)))
    return Status(204, None)


@router.post("/{pipeline_id}/publish", response=VersionOut, summary="Put the draft in force now")
def publish(request: HttpRequest, pipeline_id: RecordId) -> VersionOut:
    user = _editor(request)
    draft = _draft(get_object_or_404(Pipeline, pk=pipeline_id))
    return _version_out(editor.pipeline_publish(actor=user, draft=draft))  # type: ignore[return-value]
