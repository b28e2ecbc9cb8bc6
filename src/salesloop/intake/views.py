from __future__ import annotations

import uuid

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt

from salesloop.intake.hooks import form_submit
from salesloop.intake.models import Source, SourceKind


@csrf_exempt  # embedded on other sites: no session, no CSRF cookie; the honeypot and rate limit guard it
@xframe_options_exempt  # meant to be embedded in the customer's own website with an <iframe>
def web_form_page(request: HttpRequest, slug: str) -> HttpResponse:
    """C1.1 官网咨询: the public, embeddable inquiry form of a web-form source."""
    source = Source.objects.filter(slug=slug, kind=SourceKind.WEB_FORM).first()
    if source is None or not source.enabled:
        raise Http404("no such form")
    context: dict[str, object] = {
        "source": source,
        "values": {},
        "errors": {},
        "submission_id": uuid.uuid4().hex,
    }
    if request.method == "POST":
        values = {
            k: request.POST.get(k, "").strip()
            for k in ("name", "phone", "company", "message", "website", "submission_id")
        }
        context["values"] = values
        errors = {}
        if not values["name"]:
            errors["name"] = "请填写您的称呼"
        if not values["phone"]:
            errors["phone"] = "请填写手机号码"
        if errors:
            context["errors"] = errors
            return render(request, "intake/form.html", context, status=422)
        outcome, refused = form_submit(source, values, request)
        if refused == "rate":
            context["errors"] = {"form": "提交过于频繁，请稍后再试"}
            return render(request, "intake/form.html", context, status=429)
        if outcome is not None and outcome.status == "failed" and "phone" in outcome.error:
            # The failed submission is kept; a corrected one is a new submission.
            values["submission_id"] = uuid.uuid4().hex
            context["errors"] = {"phone": "手机号码似乎不正确，请检查后重新提交"}
            return render(request, "intake/form.html", context, status=422)
        return render(request, "intake/form_thanks.html", {"source": source})
    return render(request, "intake/form.html", context)
