"""The public viewer of a tracked document (SPEC C3.4), `/d/<token>`: no login, the secret token is
the permission. Each GET of the page is one opening (a `DocumentView` with its own secret
`view_key`); the page then beats while it is visible and the server adds the visible time, capped
by the wall-clock time since the previous beat (services.document_view_beat).

Unknown, revoked or withdrawn → 404, the same answer for each, so a token cannot be probed.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from salesloop.engagement import selectors, services
from salesloop.engagement.models import TrackedDocument
from salesloop.engagement.responses import attachment_file_response

MAX_VISIBLE_MS = 10**12  # a number the field holds; anything above is not a real report


def _live(token: str) -> TrackedDocument:
    document = selectors.document_by_token(token)
    if document is None:
        raise Http404("no such document")
    return document


def _private(response: HttpResponse) -> HttpResponse:
    # The token is in the URL: it must not leak to the linked site nor be indexed or cached.
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


@never_cache
@require_GET  # HEAD (link previews, scanners) is refused and counts no opening
def document_viewer(request: HttpRequest, token: str) -> HttpResponse:
    document = _live(token)
    attachment = document.attachment
    # A signed-in user of salesloop (the rep checking the link they send) is not the customer: a
    # preview, neither an opening nor seconds, so the health signal stays the customer's own.
    preview = bool(request.user.is_authenticated)
    view = None
    if not preview:
        user_agent = request.headers.get("User-Agent", "")
        view = services.document_view_open(document=document, user_agent=user_agent)
    context = {
        "document": document,
        "attachment": attachment,
        "preview": preview,
        "view_key": view.view_key if view else "",
        "beat_url": reverse("document-viewer-beat", args=[token]),
        "file_url": reverse("document-viewer-file", args=[token]) if attachment.file else "",
        "is_pdf": attachment.content_type == "application/pdf",
        "is_image": attachment.content_type.startswith("image/"),
        "beat_ms": int(services.beat_interval_seconds() * 1000),
    }
    return _private(render(request, "engagement/viewer.html", context))


@never_cache
@require_GET
@xframe_options_sameorigin  # embedded by the viewer page, by no other site
def document_file(request: HttpRequest, token: str) -> HttpResponse:
    document = _live(token)
    return _private(attachment_file_response(document.attachment, inline=True))


@csrf_exempt  # the customer has no session; the secret view_key binds the beat to one opening
@require_POST
def document_beat(request: HttpRequest, token: str) -> HttpResponse:
    view_key = request.POST.get("view_key", "")
    try:
        visible_ms = int(request.POST.get("visible_ms", ""))
    except ValueError:
        return HttpResponse("visible_ms must be a whole number of milliseconds", status=400)
    if (
        not 0 <= visible_ms <= MAX_VISIBLE_MS
        or not selectors.is_token(view_key)
        or not selectors.is_token(token)
    ):
        return HttpResponse("bad beat", status=400)
    view = services.document_view_beat(token=token, view_key=view_key, visible_ms=visible_ms)
    if view is None:
        raise Http404("no such view")
    return HttpResponse(status=204)
