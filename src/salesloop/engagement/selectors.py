"""Reads of a lead's engagement (SPEC C3.4). Records are reached through their lead, which the
caller fetched with `crm.selectors.lead_get` (404 out of scope); `*_get` here do the same for a
record addressed by its own id."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch
from django.http import Http404

from salesloop.crm.models import Attachment, Lead
from salesloop.crm.selectors import leads_visible_to
from salesloop.engagement.models import (
    BudgetMilestone,
    BudgetStage,
    DocumentView,
    Meeting,
    Touch,
    TrackedDocument,
)
from salesloop.engagement.ocr.models import EvidenceText
from salesloop.engagement.ocr.selectors import ocr_results_for

BUDGET_ORDER = list(BudgetStage.values)


@dataclass
class DocumentStats:
    document: TrackedDocument
    views: list[DocumentView]
    opens: int
    seconds: int


@dataclass
class AttachmentRow:
    attachment: Attachment
    tracked: DocumentStats | None
    ocr: EvidenceText | None = None  # what OCR read (issue 6 item 3); None: not an image or PDF


@dataclass
class LeadEngagement:
    lead: Lead
    attachments: list[AttachmentRow]
    touches: list[Touch]
    meetings: list[Meeting]
    budget: list[BudgetMilestone]
    contacts: list[Any] = field(default_factory=list)

    @property
    def budget_current(self) -> BudgetMilestone | None:
        return self.budget[-1] if self.budget else None

    @property
    def budget_step(self) -> int:
        """1–4 along unknown → range known → confirmed → approved (0: nothing recorded)."""
        current = self.budget_current
        return BUDGET_ORDER.index(current.stage) + 1 if current else 0


def document_stats(document: TrackedDocument) -> DocumentStats:
    views = list(document.views.all())  # prefetched by the callers
    return DocumentStats(
        document=document, views=views, opens=len(views), seconds=sum(v.seconds for v in views)
    )


def attachments_of(*, lead: Lead) -> list[AttachmentRow]:
    """The lead's attachments, oldest first, each with its share link and openings and its OCR
    result (3 queries)."""
    attachments = list(
        Attachment.objects.filter(lead=lead)
        .select_related("tracked", "uploaded_by")
        .prefetch_related(
            Prefetch("tracked__views", queryset=DocumentView.objects.order_by("opened_at", "id"))
        )
        .order_by("created_at", "id")
    )
    ocr = ocr_results_for(a.pk for a in attachments)
    rows = []
    for attachment in attachments:
        document = getattr(attachment, "tracked", None)
        rows.append(
            AttachmentRow(
                attachment=attachment,
                tracked=document_stats(document) if document else None,
                ocr=ocr.get(attachment.pk),
            )
        )
    return rows


def touches_of(*, lead: Lead) -> list[Touch]:
    return list(Touch.objects.filter(lead=lead).select_related("actor", "contact").order_by("-at", "-id"))


def meetings_of(*, lead: Lead) -> list[Meeting]:
    return list(Meeting.objects.filter(lead=lead).order_by("-scheduled_at", "-id"))


def budget_milestones_of(*, lead: Lead) -> list[BudgetMilestone]:
    """Oldest first; the last is current."""
    return list(BudgetMilestone.objects.filter(lead=lead).select_related("actor").order_by("at", "id"))


def lead_engagement(*, lead: Lead) -> LeadEngagement:
    """Everything the lead page's engagement panel shows, in a fixed number of queries."""
    from salesloop.crm.models import Contact

    contacts = list(Contact.objects.filter(customer_id=lead.customer_id).order_by("id")[:50])
    if lead.contact_id and all(c.pk != lead.contact_id for c in contacts) and lead.contact is not None:
        contacts.insert(0, lead.contact)
    return LeadEngagement(
        lead=lead,
        attachments=attachments_of(lead=lead),
        touches=touches_of(lead=lead),
        meetings=meetings_of(lead=lead),
        budget=budget_milestones_of(lead=lead),
        contacts=contacts,
    )


def _visible_lead_ids(user: Any) -> Any:
    return leads_visible_to(user).values("pk")


def attachment_get(*, user: Any, attachment_id: int) -> Attachment:
    attachment = (
        Attachment.objects.select_related("lead")
        .filter(pk=attachment_id, lead_id__in=_visible_lead_ids(user))
        .first()
    )
    if attachment is None:
        raise Http404("attachment not found")
    return attachment


def document_get(*, user: Any, document_id: int) -> TrackedDocument:
    document = (
        TrackedDocument.objects.select_related("attachment", "attachment__lead")
        .prefetch_related(Prefetch("views", queryset=DocumentView.objects.order_by("opened_at", "id")))
        .filter(pk=document_id, lead_id__in=_visible_lead_ids(user))
        .first()
    )
    if document is None:
        raise Http404("document not found")
    return document


def tracked_documents_of(*, lead: Lead) -> list[DocumentStats]:
    documents = (
        TrackedDocument.objects.filter(lead=lead)
        .select_related("attachment")
        .prefetch_related(Prefetch("views", queryset=DocumentView.objects.order_by("opened_at", "id")))
        .order_by("created_at", "id")
    )
    return [document_stats(d) for d in documents]


def meeting_get(*, user: Any, meeting_id: int) -> Meeting:
    meeting = (
        Meeting.objects.select_related("lead")
        .filter(pk=meeting_id, lead_id__in=_visible_lead_ids(user))
        .first()
    )
    if meeting is None:
        raise Http404("meeting not found")
    return meeting


def meeting_by_external(*, user: Any, system: str, external_id: str) -> Meeting | None:
    """The meeting a system pushed under this id; None if never pushed; 404 if the user cannot see it."""
    meeting = Meeting.objects.select_related("lead").filter(system=system, external_id=external_id).first()
    if meeting is not None and not leads_visible_to(user).filter(pk=meeting.lead_id).exists():
        raise Http404("meeting not found")
    return meeting


def touch_get(*, user: Any, touch_id: int) -> Touch:
    touch = (
        Touch.objects.select_related("lead").filter(pk=touch_id, lead_id__in=_visible_lead_ids(user)).first()
    )
    if touch is None:
        raise Http404("touch not found")
    return touch


TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def is_token(value: str) -> bool:
    """Shaped like a secrets.token_urlsafe(32): anything else is not looked up at all."""
    return 0 < len(value) <= 64 and set(value) <= TOKEN_CHARS


def document_by_token(token: str) -> TrackedDocument | None:
    """The live document behind a share link: None when unknown, revoked or withdrawn."""
    if not is_token(token):
        return None
    return (
        TrackedDocument.objects.select_related("attachment")
        .filter(token=token, revoked_at__isnull=True, attachment__removed_at__isnull=True)
        .first()
    )
