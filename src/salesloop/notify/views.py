"""Alert pages (SPEC C9 alerts; docs/alerts.md): the alerts in your scope with their robots'
delivery status, the failed and uncertain deliveries with a retry, and the robots' channels."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from salesloop.accounts.models import Region, Team
from salesloop.crm.selectors import FilterError
from salesloop.notify import channels, outbox, selectors
from salesloop.notify.alerts import KIND_LABELS, explanation_lines
from salesloop.notify.bots import webhook_url_masked
from salesloop.notify.models import BotChannel, BotKind, DeliveryStatus


def _before(request: HttpRequest) -> int | None:
    raw = request.GET.get("before", "")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 2**63 else None


@login_required
@require_GET
def alert_list_page(request: HttpRequest) -> HttpResponse:
    """Open and recent alerts in the user's scope, each with why, what to do, and where it went."""
    status = request.GET.get("status", "all")
    if status not in selectors.ALERT_STATUSES:
        status = "all"
    page = selectors.alerts_page(user=request.user, status=status, before=_before(request))
    rows = [{"alert": a, "why": explanation_lines(a.explanation or {})} for a in page.alerts]
    return render(
        request,
        "notify/alerts.html",
        {
            "rows": rows,
            "status": status,
            "next_before": page.next_before,
            "may_manage": channels.may_manage_channels(request.user),
        },
    )


def _manager(request: HttpRequest) -> Any:
    if not channels.may_manage_channels(request.user):
        raise PermissionDenied
    return request.user


@login_required
@require_GET
def delivery_list_page(request: HttpRequest) -> HttpResponse:
    """The outbox by status; "needs attention" (failed and uncertain) is what the other pages link
    to. A status that is not one is a 400 saying so, not a silently unfiltered list."""
    user = _manager(request)
    status = request.GET.get("status", "").strip()[:100] or None
    context: dict[str, Any] = {
        "deliveries": [],
        "status": status,
        "statuses": DeliveryStatus.choices,
        "needs_attention": selectors.NEEDS_ATTENTION,
        "next_before": None,
        "error": "",
    }
    try:
        page = selectors.deliveries_page(user=user, status=status, before=_before(request))
    except FilterError:
        context["error"] = _("There is no delivery status “%(status)s”. Use one or more of: %(choices)s.") % {
            "status": status,
            "choices": ", ".join(DeliveryStatus.values),
        }
        return render(request, "notify/deliveries.html", context, status=400)
    context.update(deliveries=page.deliveries, next_before=page.next_before)
    return render(request, "notify/deliveries.html", context)


@login_required
@require_POST
def delivery_retry_page(request: HttpRequest, delivery_id: int) -> HttpResponse:
    user = _manager(request)
    delivery = selectors.delivery_get(user=user, delivery_id=delivery_id)
    try:
        outbox.delivery_retry(actor=user, delivery=delivery)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("The delivery will be tried again now."))
    return redirect("alerts-deliveries")


def _form_values(request: HttpRequest) -> dict[str, Any]:
    post = request.POST
    scope = post.get("scope", "")
    region_id = team_id = None
    if scope.startswith("region:") and scope[7:].isdigit():
        region_id = int(scope[7:])
    elif scope.startswith("team:") and scope[5:].isdigit():
        team_id = int(scope[5:])
    return {
        "kind": post.get("kind", ""),
        "name": post.get("name", "").strip()[:200],
        "webhook_url": post.get("webhook_url", "").strip()[:1000],
        "secret": post.get("secret", "").strip()[:300],
        "region_id": region_id,
        "team_id": team_id,
        "enabled": post.get("enabled") == "on",
        "alert_kinds": [k for k in post.getlist("alert_kinds") if k][:10],
    }


def _scopes(user: Any) -> list[tuple[str, str]]:
    """The scopes this user may give a channel: the organisation, regions, teams."""
    regions = Region.objects.order_by("code")
    teams = Team.objects.select_related("region").order_by("name")
    options: list[tuple[str, str]] = []
    if channels.manages_all_channels(user):
        options.append(("", _("The whole organisation")))
    else:
        regions = regions.filter(pk=user.region_id)
        teams = teams.filter(region_id=user.region_id)
    options += [(f"region:{r.pk}", _("Region %(name)s") % {"name": r.name}) for r in regions]
    options += [(f"team:{t.pk}", _("Team %(name)s") % {"name": t.name}) for t in teams]
    return options


def _form_context(
    request: HttpRequest, *, channel: BotChannel | None, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    scope = ""
    if values.get("region_id"):
        scope = f"region:{values['region_id']}"
    elif values.get("team_id"):
        scope = f"team:{values['team_id']}"
    return {
        "channel": channel,
        "values": values,
        "scope": scope,
        "errors": errors,
        "kinds": BotKind.choices,
        "alert_kinds": list(KIND_LABELS.items()),
        "scopes": _scopes(request.user),
        "masked_url": webhook_url_masked(channel.webhook_url) if channel else "",
    }


@login_required
@require_http_methods(["GET", "POST"])
def channel_list_page(request: HttpRequest) -> HttpResponse:
    """The robots the user manages, and a form to add one (errors by field, input kept)."""
    user = _manager(request)
    values: dict[str, Any] = {"kind": BotKind.WECOM, "enabled": True, "alert_kinds": []}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = _form_values(request)
        try:
            channels.channel_create(actor=user, **values)
        except ValidationError as exc:
            errors = {field: " ".join(msgs) for field, msgs in exc.message_dict.items()}
            status = 400
        else:
            messages.success(request, _("The robot is set up."))
            return redirect("alerts-channels")
    listing = [(c, webhook_url_masked(c.webhook_url)) for c in channels.channels_visible(user=user)]
    context = _form_context(request, channel=None, values=values, errors=errors)
    return render(request, "notify/channels.html", {**context, "listing": listing}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def channel_edit_page(request: HttpRequest, channel_id: int) -> HttpResponse:
    user = _manager(request)
    channel = channels.channel_get(user=user, channel_id=channel_id)
    values: dict[str, Any] = {
        "kind": channel.kind,
        "name": channel.name,
        "webhook_url": "",
        "secret": "",
        "region_id": channel.region_id,
        "team_id": channel.team_id,
        "enabled": channel.enabled,
        "alert_kinds": channel.alert_kinds,
    }
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = _form_values(request)
        # A blank webhook or secret keeps the stored one: neither is ever shown back in clear.
        changes = {k: v for k, v in values.items() if k != "kind" and (k != "webhook_url" or v)}
        changes["secret_clear"] = request.POST.get("secret_clear") == "on"
        try:
            channels.channel_update(actor=user, channel=channel, **changes)
        except ValidationError as exc:
            errors = {field: " ".join(msgs) for field, msgs in exc.message_dict.items()}
            status = 400
        else:
            messages.success(request, _("The robot is saved."))
            return redirect("alerts-channels")
        values["kind"] = channel.kind
    context = _form_context(request, channel=channel, values=values, errors=errors)
    return render(request, "notify/channel_edit.html", context, status=status)
