"""Insights read the other apps' facts through their selectors (DESIGN.md); the few tables here
hold what insights derive or configure: funnel aggregates and indicator thresholds and values.
One module per part; this package re-exports their models for Django."""

from salesloop.insights.models.funnel import (
    DWELL_BUCKETS,
    FunnelDay,
    FunnelOpen,
    FunnelOwnerDay,
    FunnelOwnerOpen,
)
from salesloop.insights.models.indicators import (
    IndicatorArrivalDay,
    IndicatorLead,
    IndicatorSpan,
    IndicatorStallDay,
    IndicatorThresholds,
    IndicatorTouch,
    IndicatorTouchDay,
    IndicatorValue,
)

__all__ = [
    "DWELL_BUCKETS",
    "FunnelDay",
    "FunnelOpen",
    "FunnelOwnerDay",
    "FunnelOwnerOpen",
    "IndicatorArrivalDay",
    "IndicatorLead",
    "IndicatorSpan",
    "IndicatorStallDay",
    "IndicatorThresholds",
    "IndicatorTouch",
    "IndicatorTouchDay",
    "IndicatorValue",
]
