"""C9 → alerts: after an evaluation, each value's warning state drives one alert per indicator,
granularity and scope (`notify.alerts.alert_state_set`). Entering warning raises one alert — in-app
to the scope's people, and to the group robots covering the scope; staying in warning raises
nothing; leaving it clears the alert, so the next entry raises a new one."""

from __future__ import annotations

from typing import Any

from salesloop.accounts.models import Region, Team, User
from salesloop.core.roles import Role
from salesloop.insights.indicators.responses import RESPONSE_LABELS
from salesloop.insights.models.indicators import IndicatorStatus, IndicatorValue, ScopeKind
from salesloop.notify.alerts import alert_state_set


def alert_key(value: IndicatorValue) -> str:
    return f"indicator:{value.indicator}:{value.granularity}:{value.scope_kind}:{value.scope_id}"


def _ids(values: list[IndicatorValue], kind: str) -> set[int]:
    return {v.scope_id for v in values if v.scope_kind == kind}


def indicator_alerts_apply(*, values: list[IndicatorValue]) -> int:
    """The alerts of one evaluation's values; returns how many were raised. Who hears: the
    organisation's values — directors; a region's — its managers; a team's — the managers of its
    region; a rep's — the rep and their region's managers."""
    regions = Region.objects.in_bulk(_ids(values, ScopeKind.REGION))
    teams = Team.objects.select_related("region").in_bulk(_ids(values, ScopeKind.TEAM))
    reps = User.objects.select_related("region", "team").in_bulk(_ids(values, ScopeKind.REP))
    managers = list(User.objects.filter(role=Role.MANAGER, is_active=True))
    directors = list(User.objects.filter(role=Role.DIRECTOR, is_active=True))

    def managers_of(region_id: int | None) -> list[User]:
        return [m for m in managers if region_id is not None and m.region_id == region_id]

    raised = 0
    for value in values:
        region: Any = None
        team: Any = None
        recipients: list[User] = []
        if value.scope_kind == ScopeKind.ORG:
            recipients = directors
        elif value.scope_kind == ScopeKind.REGION:
            region = regions.get(value.scope_id)
            recipients = managers_of(value.scope_id)
        elif value.scope_kind == ScopeKind.TEAM:
            team = teams.get(value.scope_id)
            region = team.region if team else None
            recipients = managers_of(team.region_id if team else None)
        elif (rep := reps.get(value.scope_id)) is not None:
            region, team = rep.region, rep.team
            recipients = [rep, *managers_of(rep.region_id)]
        alert = alert_state_set(
            key=alert_key(value),
            active=value.status == IndicatorStatus.WARNING,
            kind=f"indicator.{value.indicator}",
            title=value.alert_title(),
            body=value.alert_body(),
            explanation=value.explanation,
            link=value.drill_link,
            suggested_response=str(RESPONSE_LABELS.get(value.suggested_response, value.suggested_response)),
            region=region,
            team=team,
            recipients=recipients,
        )
        raised += alert is not None
    return raised
