"""What the engagement pages, the API and the public viewer answer with alike: a stored file, a
share link."""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from django.urls import reverse

from salesloop.crm.models import Attachment


def share_url(token: str) -> str:
    return settings.SITE_URL + reverse("document-viewer", args=[token])


def attachment_file_response(attachment: Attachment, *, inline: bool) -> FileResponse:
    """The stored file with the content type checked at upload — never a public media URL."""
    if not attachment.file:
        raise Http404("this attachment is a link")
    try:
        handle = default_storage.open(attachment.file.name, "rb")
    except FileNotFoundError as exc:
        raise Http404("the file is missing") from exc
    name = attachment.file.name.rsplit("/", 1)[-1]
    response = FileResponse(
        handle,
        content_type=attachment.content_type or "application/octet-stream",
        as_attachment=not inline,
        filename=name,
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
