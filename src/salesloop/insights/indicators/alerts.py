"""What an alert about an indicator says (the hand-off to notify: title, body in Chinese with the
inputs, the drill-down link and the suggested response). Alerts are sent by the notify app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from salesloop.insights.indicators.responses import RESPONSE_LABELS, RULE_LABELS
from salesloop.insights.models.indicators import Indicator

if TYPE_CHECKING:
    from salesloop.insights.models.indicators import IndicatorValue


def value_text(indicator: str, value: float | None) -> str:
    if value is None:
        return "—"
    if indicator == Indicator.STALL:
        return _("%(days)s days") % {"days": f"{value:.1f}"}
    return f"{value * 100:.1f}%"


def inputs_text(value: IndicatorValue) -> str:
    if value.indicator == Indicator.CONVERSION:
        return _("%(reached)s of %(leads)s leads reached 需求确认") % {
            "reached": int(value.numerator),
            "leads": value.denominator,
        }
    if value.indicator == Indicator.STALL:
        share = value.explanation.get("inputs", {}).get("demo_share")
        return _("%(days)s lead-days over %(leads)s open leads; 方案演示 holds %(share)s") % {
            "days": f"{value.numerator:.1f}",
            "leads": value.denominator,
            "share": "—" if share is None else f"{share * 100:.0f}%",
        }
    rate = value.explanation.get("inputs", {}).get("quote_rate")
    return _("%(responded)s of %(touches)s touches answered; at 报价谈判 %(rate)s") % {
        "responded": int(value.numerator),
        "touches": value.denominator,
        "rate": "—" if rate is None else f"{rate * 100:.0f}%",
    }


def _scope_text(value: IndicatorValue) -> str:
    label = value.explanation.get("scope", {}).get("label") or ""
    return label or _("whole organisation")


def alert_title(value: IndicatorValue) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return _("%(scope)s: %(indicator)s entered warning (%(value)s)") % {
            "scope": _scope_text(value),
            "indicator": Indicator(value.indicator).label,
            "value": value_text(value.indicator, value.value),
        }


def alert_body(value: IndicatorValue) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return _("%(period)s: %(inputs)s. %(rule)s Suggested response: %(response)s.") % {
            "period": value.period_start.isoformat(),
            "inputs": inputs_text(value),
            "rule": RULE_LABELS.get(value.explanation.get("rule", ""), ""),
            "response": RESPONSE_LABELS.get(value.suggested_response, value.suggested_response),
        }
