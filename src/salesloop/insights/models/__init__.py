"""Insights read the other apps' facts through their selectors (DESIGN.md); the few tables here
hold what insights derive or configure: funnel aggregates and indicator thresholds and values.
One module per part; this package re-exports their models for Django."""

from salesloop.insights.models.indicators import (  # noqa: F401  (re-exported for Django)
    IndicatorArrivalDay,
    IndicatorLead,
    IndicatorSpan,
    IndicatorStallDay,
    IndicatorThresholds,
    IndicatorTouch,
    IndicatorTouchDay,
    IndicatorValue,
)
