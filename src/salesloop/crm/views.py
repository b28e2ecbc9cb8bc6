from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("home")


@login_required
def lead_list_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("leads")


@login_required
def lead_detail_page(request: HttpRequest, lead_id: int) -> HttpResponse:
    return HttpResponse("lead")
