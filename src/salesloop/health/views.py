"""Health score pages (SPEC C3): the lead page's breakdown panel (loaded by htmx) and the settings
page where a director publishes a new version of the scoring configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from salesloop.health import selectors, services
from salesloop.health.scoring import BUDGET_STAGES, SIGNAL_LABELS, SIGNAL_UNITS, SIGNALS


@dataclass(frozen=True)
class Bar:
    signal: str
    label: str
    unit: str
    raw: str
    weight: int
    contribution: float
    percent: int  # of the signal's weight earned: the bar's length


def _raw_text(signal: dict[str, Any]) -> str:
    raw = signal["raw"]
    if signal["signal"] == "budget_progress":
        from salesloop.engagement.models import BudgetStage

        index = int(raw)
        return str(BudgetStage(BUDGET_STAGES[index]).label) if 0 <= index < len(BUDGET_STAGES) else "—"
    if signal["signal"] in ("meeting_attendance", "response_rate"):
        return f"{raw * 100:.0f}%"
    if signal["signal"] == "material_viewing":
        return _("%(seconds)s s") % {"seconds": f"{raw:.0f}"}
    return f"{raw:.1f}"


def _bars(breakdown: dict[str, Any] | None) -> list[Bar]:
    bars = []
    for signal in (breakdown or {}).get("signals", []):
        weight = signal["weight"]
        bars.append(
            Bar(
                signal=signal["signal"],
                label=str(SIGNAL_LABELS.get(signal["signal"], signal["signal"])),
                unit=str(SIGNAL_UNITS.get(signal["signal"], "")),
                raw=_raw_text(signal),
                weight=weight,
                contribution=signal["contribution"],
                percent=round(100 * signal["contribution"] / weight) if weight else 0,
            )
        )
    return bars


@login_required
@require_GET
def lead_panel(request: HttpRequest, lead_id: int) -> HttpResponse:
    """The lead page's health section: score, red badge, one bar per signal (404 out of scope)."""
    view = selectors.lead_health_get(user=request.user, lead_id=lead_id)
    return render(
        request,
        "health/_lead_panel.html",
        {
            "view": view,
            "lead": view.lead,
            "bars": _bars(view.health.breakdown if view.health else None),
            "may_configure": services.may_configure(request.user),
        },
    )


# --- settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignalRow:
    signal: str
    label: str
    weight: Any
    window: Any
    target: Any
    errors: list[str]


def _rows(values: dict[str, dict[str, Any]], errors: dict[str, str]) -> list[SignalRow]:
    return [
        SignalRow(
            signal=signal,
            label=str(SIGNAL_LABELS[signal]),
            weight=values["weights"].get(signal, ""),
            window=values["windows"].get(signal, ""),
            target=values["targets"].get(signal, ""),
            errors=[
                f"{name}: {errors[f'{key}.{signal}']}"
                for key, name in (
                    ("weights", _("Weight")),
                    ("windows", _("Window")),
                    ("targets", _("Target")),
                )
                if f"{key}.{signal}" in errors
            ],
        )
        for signal in SIGNALS
    ]


@login_required
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest) -> HttpResponse:
    """C3.2: the configuration in force, its versions, and a form to publish the next one."""
    if not services.may_configure(request.user):
        raise PermissionDenied
    current = services.model_in_force()
    config = services.config_of(current)
    values: dict[str, Any] = {
        "weights": dict(config.weights),
        "windows": dict(config.windows),
        "targets": dict(config.targets),
        "half_life_days": config.half_life_days,
        "red_threshold": config.red_threshold,
        "note": "",
    }
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        post = request.POST
        values = {
            "weights": {s: post.get(f"weights.{s}", "").strip() for s in SIGNALS},
            "windows": {s: post.get(f"windows.{s}", "").strip() for s in SIGNALS},
            "targets": {s: post.get(f"targets.{s}", "").strip() for s in SIGNALS},
            "half_life_days": post.get("half_life_days", "").strip(),
            "red_threshold": post.get("red_threshold", "").strip(),
            "note": post.get("note", "").strip()[:2000],
        }
        try:
            with transaction.atomic():
                model = services.health_model_create(actor=request.user, **values)
                services.health_model_publish(actor=request.user, model=model)
        except ValidationError as exc:
            errors = {field: " ".join(messages_) for field, messages_ in exc.message_dict.items()}
            status = 400
        else:
            messages.success(
                request,
                _("Version %(version)s is in force; scores are being recomputed.")
                % {"version": model.version},
            )
            return redirect("health-settings")
    general = {
        key: value
        for key, value in errors.items()
        if key in ("weights", "windows", "targets", "half_life_days", "red_threshold", "status", "__all__")
    }
    return render(
        request,
        "health/settings.html",
        {
            "current": current,
            "values": values,
            "rows": _rows(values, errors),
            "errors": errors,
            "general_errors": general,
            "models": selectors.health_models(limit=20),
        },
        status=status,
    )
