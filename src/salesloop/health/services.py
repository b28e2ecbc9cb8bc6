"""Customer health score (SPEC C3.2–3): recomputed on every new fact and daily; new versions of the
scoring configuration; the red flag's alert, once per crossing (raised through notify.alerts, so it
reaches the bell and the region's group robots by the same path as every alert)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from salesloop.accounts.models import User
from salesloop.core import clock
from salesloop.core.audit import audit_record
from salesloop.core.roles import Role
from salesloop.crm.models import Lead
from salesloop.health.models import HealthModel, HealthModelStatus, LeadHealth
from salesloop.health.recompute import Crossing, Outcome, recompute_all, recompute_range
from salesloop.health.scoring import Config, config_validate, default_config
from salesloop.notify.alerts import alert_state_set, alerts_clear

NOTIFICATION_KIND = "health.red"  # the alert's kind, also the in-app notice's


# --- the configuration in force ----------------------------------------------------------------


def model_in_force(at: dt.datetime | None = None) -> HealthModel | None:
    return (
        HealthModel.objects.filter(status=HealthModelStatus.PUBLISHED, effective_at__lte=at or clock.now())
        .order_by("-effective_at", "-version")
        .first()
    )


def config_of(model: HealthModel | None) -> Config:
    if model is None:
        return default_config(version=0)
    return Config(
        version=model.version,
        weights={k: int(v) for k, v in model.weights.items()},
        windows={k: int(v) for k, v in model.windows.items()},
        targets={k: float(v) for k, v in model.targets.items()},
        half_life_days=model.half_life_days,
        red_threshold=model.red_threshold,
    )


def config_in_force(at: dt.datetime | None = None) -> Config:
    return config_of(model_in_force(at))


def may_configure(user: Any) -> bool:
    return bool(user.is_superuser) or user.role in (Role.ADMIN, Role.DIRECTOR)


def _model_state(model: HealthModel) -> dict[str, Any]:
    return {
        "version": model.version,
        "status": model.status,
        "weights": model.weights,
        "windows": model.windows,
        "targets": model.targets,
        "half_life_days": model.half_life_days,
        "red_threshold": model.red_threshold,
        "effective_at": model.effective_at.isoformat() if model.effective_at else None,
    }


@transaction.atomic
def health_model_create(
    *,
    actor: Any,
    weights: Any,
    windows: Any,
    targets: Any,
    half_life_days: Any,
    red_threshold: Any,
    note: str = "",
) -> HealthModel:
    """C3.2: a new draft version of the scoring configuration (validated; errors name the field)."""
    if not may_configure(actor):
        raise PermissionDenied(_("Only a sales director or an administrator may change the health score."))
    clean = config_validate(
        weights=weights,
        windows=windows,
        targets=targets,
        half_life_days=half_life_days,
        red_threshold=red_threshold,
    )
    latest = HealthModel.objects.select_for_update().aggregate(v=Max("version"))["v"] or 0
    model = HealthModel.objects.create(version=latest + 1, note=note[:2000], created_by=actor, **clean)
    audit_record(actor=actor, action="health.model_create", target=model, after=_model_state(model))
    return model


@transaction.atomic
def health_model_publish(
    *, actor: Any, model: HealthModel, effective_at: dt.datetime | None = None
) -> HealthModel:
    """C3.2: publish a draft; it is in force from `effective_at` (now by default). Scores follow at
    the next recompute (a fact, or the daily run, which publication starts at once)."""
    if not may_configure(actor):
        raise PermissionDenied(_("Only a sales director or an administrator may change the health score."))
    model = HealthModel.objects.select_for_update().get(pk=model.pk)
    if model.status != HealthModelStatus.DRAFT:
        raise ValidationError({"status": _("Only a draft can be published.")})
    now = clock.now()
    effective_at = effective_at or now
    if effective_at < now - dt.timedelta(minutes=1):
        raise ValidationError({"effective_at": _("A version cannot take effect in the past.")})
    before = _model_state(model)
    model.status = HealthModelStatus.PUBLISHED
    model.effective_at = effective_at
    model.published_at = now
    model.published_by = actor
    model.save(update_fields=["status", "effective_at", "published_at", "published_by"])
    audit_record(
        actor=actor, action="health.model_publish", target=model, before=before, after=_model_state(model)
    )
    if effective_at <= now:
        from salesloop.health.tasks import health_recompute_daily

        transaction.on_commit(lambda: health_recompute_daily.enqueue())
    return model


# --- recomputing -------------------------------------------------------------------------------


def lead_health_changed(*, lead_id: int) -> None:
    """A fact that feeds the score was recorded for this lead: recompute its health (and its
    customer's). Engagement services call this inside their transaction, after the fact is saved."""
    lead_recompute(lead_id=lead_id)


# No savepoint inside the caller's transaction: two round trips of a ~3 ms recompute, and a failure
# here fails the fact's whole transaction anyway.
@transaction.atomic(savepoint=False)
def lead_recompute(*, lead_id: int, now: dt.datetime | None = None) -> Outcome:
    """C3.2: one lead's score from its facts at `now`; a crossing into red notifies (C3.3)."""
    now = now or clock.now()
    outcome = recompute_range(lo=lead_id, hi=lead_id, now=now, config=config_in_force(now))
    if outcome.crossings:
        crossings_notify(outcome.crossings)
    if outcome.recoveries:
        recoveries_clear(outcome.recoveries)
    return outcome


def leads_recompute(
    *,
    now: dt.datetime | None = None,
    open_only: bool = True,
    notify: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> Outcome:
    """C3.2 daily: every (open) lead, so scores decay with time. Closed leads keep their last
    score unless `open_only` is False. `notify=False` records red states without notifying (a
    first scoring of an existing database would otherwise send every red lead at once)."""
    now = now or clock.now()
    return recompute_all(
        now=now,
        config=config_in_force(now),
        open_only=open_only,
        on_crossings=crossings_notify if notify else None,
        on_recoveries=recoveries_clear,  # clearing tells nobody, so even a silent run does it
        progress=progress,
    )


def _managers_of(region_ids: set[int]) -> dict[int, list[User]]:
    managers: dict[int, list[User]] = {}
    for manager in User.objects.filter(role=Role.MANAGER, is_active=True, region_id__in=region_ids):
        managers.setdefault(manager.region_id, []).append(manager)
    return managers


def alert_key(lead_id: int) -> str:
    return f"health:red:lead:{lead_id}"


def crossings_notify(crossings: list[Crossing]) -> int:
    """C3.3: a lead that went red raises one alert (kind `health.red`): its owner and the managers
    of its region hear of it in-app, and the robots of its region / its owner's team get it.
    Returns the number of people told."""
    leads = Lead.objects.select_related("owner", "region", "owner__region", "owner__team").in_bulk(
        [c.lead_id for c in crossings]
    )
    region_ids = {
        lead.region_id or (lead.owner.region_id if lead.owner else None) for lead in leads.values()
    } - {None}
    managers = _managers_of(region_ids)  # type: ignore[arg-type]
    breakdowns = dict(LeadHealth.objects.filter(lead_id__in=list(leads)).values_list("lead_id", "breakdown"))
    sent = 0
    with translation.override(settings.LANGUAGE_CODE):
        for crossing in crossings:
            lead = leads.get(crossing.lead_id)
            if lead is None:
                continue
            region_id = lead.region_id or (lead.owner.region_id if lead.owner else None)
            people = {m.pk: m for m in managers.get(region_id, [])} if region_id else {}
            if lead.owner and lead.owner.is_active:
                people[lead.owner.pk] = lead.owner
            title = _("Health %(score)s: %(lead)s is flagged red") % {
                "score": crossing.score,
                "lead": lead.title,
            }
            breakdown = breakdowns.get(lead.pk) or {}
            body = _(
                "The lead's health score fell below the red line. Open it to see which signals are weak."
            )
            weakest = _weakest_signals(breakdown)
            if weakest:
                body += " " + _("Weakest: %(signals)s.") % {"signals": "、".join(weakest)}
            alert = alert_state_set(
                key=alert_key(lead.pk),
                active=True,
                kind=NOTIFICATION_KIND,
                title=title,
                body=body,
                explanation=breakdown,
                link=reverse("lead-detail", args=[lead.pk]),
                suggested_response=_(
                    "Contact the customer this week; the weakest signals in the score say what is missing."
                ),
                region=lead.region if lead.region_id else (lead.owner.region if lead.owner else None),
                team=lead.owner.team if lead.owner and lead.owner.team_id else None,
                recipients=list(people.values()),
            )
            if alert is not None:
                sent += len(people)
    return sent


def _weakest_signals(breakdown: dict[str, Any], count: int = 2) -> list[str]:
    """The weighted signals furthest from full marks, named for people (the robot's message)."""
    from salesloop.health.scoring import SIGNAL_LABELS

    signals = [s for s in breakdown.get("signals", []) if s.get("weight")]
    signals.sort(key=lambda s: (s.get("normalised", 0), -s["weight"]))
    return [str(SIGNAL_LABELS.get(s["signal"], s["signal"])) for s in signals[:count]]


def recoveries_clear(lead_ids: list[int]) -> int:
    """C3.3: leads back above the red line clear their alert, so the next crossing raises anew."""
    return alerts_clear(keys=[alert_key(lead_id) for lead_id in lead_ids])
