"""The health score's arithmetic (SPEC C3.1–2), free of the database: the six signals, the default
configuration, its validation, and the score of one lead from its aggregated facts.

Every fact counts with the weight `0.5 ** (age_days / half_life_days)` (1 for a fact of today,
½ after one half-life); facts older than the signal's window do not count. The aggregates are
sums of these weights, taken in SQL by health.facts for one lead or a range of leads alike, so the
single-lead recompute and the bulk recompute run the same numbers through `score_lead`.
docs/health.md gives the formulas and the reasoning behind the defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

CONTACT_FREQUENCY = "contact_frequency"
MATERIAL_VIEWING = "material_viewing"
MEETING_ATTENDANCE = "meeting_attendance"
BUDGET_PROGRESS = "budget_progress"
RESPONSE_RATE = "response_rate"
CUSTOMER_INITIATED = "customer_initiated"

SIGNALS = (
    CONTACT_FREQUENCY,
    MATERIAL_VIEWING,
    MEETING_ATTENDANCE,
    BUDGET_PROGRESS,
    RESPONSE_RATE,
    CUSTOMER_INITIATED,
)

SIGNAL_LABELS = {
    CONTACT_FREQUENCY: _("Contact frequency"),
    MATERIAL_VIEWING: _("Material viewing time"),
    MEETING_ATTENDANCE: _("Meeting attendance"),
    BUDGET_PROGRESS: _("Budget confirmation progress"),
    RESPONSE_RATE: _("Response rate to outreach"),
    CUSTOMER_INITIATED: _("Customer-initiated contacts"),
}

# What the raw value of each signal is, for the breakdown.
SIGNAL_UNITS = {
    CONTACT_FREQUENCY: _("touches (decayed)"),
    MATERIAL_VIEWING: _("seconds viewed (decayed)"),
    MEETING_ATTENDANCE: _("share attended"),
    BUDGET_PROGRESS: _("budget stage"),
    RESPONSE_RATE: _("share answered"),
    CUSTOMER_INITIATED: _("contacts (decayed)"),
}

DEFAULT_WEIGHTS = {
    CONTACT_FREQUENCY: 20,
    MATERIAL_VIEWING: 15,
    MEETING_ATTENDANCE: 20,
    BUDGET_PROGRESS: 20,
    RESPONSE_RATE: 15,
    CUSTOMER_INITIATED: 10,
}
DEFAULT_WINDOWS = {
    CONTACT_FREQUENCY: 30,
    MATERIAL_VIEWING: 30,
    MEETING_ATTENDANCE: 90,
    BUDGET_PROGRESS: 180,
    RESPONSE_RATE: 60,
    CUSTOMER_INITIATED: 60,
}
# Full marks: 8 touches in the window; 10 minutes of reading; attendance counted over at least
# 2 meetings; budget approved (the stage ladder is fixed, its target is 1); replies counted over at
# least 4 outreaches; 3 contacts the customer started.
DEFAULT_TARGETS = {
    CONTACT_FREQUENCY: 8.0,
    MATERIAL_VIEWING: 600.0,
    MEETING_ATTENDANCE: 2.0,
    BUDGET_PROGRESS: 1.0,
    RESPONSE_RATE: 4.0,
    CUSTOMER_INITIATED: 3.0,
}
DEFAULT_HALF_LIFE_DAYS = 14
DEFAULT_RED_THRESHOLD = 40
MAX_WINDOW_DAYS = 365

EXPLANATION_VERSION = 1  # of the `health_score` explanation (health.explanations)

BUDGET_STAGES = ("unknown", "range_known", "confirmed", "approved")
BUDGET_VALUES = {"unknown": 0.0, "range_known": 0.33, "confirmed": 0.67, "approved": 1.0}


@dataclass(frozen=True)
class Config:
    """The parts of a HealthModel the arithmetic needs."""

    version: int
    weights: dict[str, int]
    windows: dict[str, int]
    targets: dict[str, float]
    half_life_days: int
    red_threshold: int

    @property
    def decay_rate(self) -> float:
        """k in weight = exp(-k · age_days)."""
        return math.log(2) / self.half_life_days


def default_config(version: int = 1) -> Config:
    return Config(
        version=version,
        weights=dict(DEFAULT_WEIGHTS),
        windows=dict(DEFAULT_WINDOWS),
        targets=dict(DEFAULT_TARGETS),
        half_life_days=DEFAULT_HALF_LIFE_DAYS,
        red_threshold=DEFAULT_RED_THRESHOLD,
    )


def config_validate(
    *, weights: Any, windows: Any, targets: Any, half_life_days: Any, red_threshold: Any
) -> dict[str, Any]:
    """The cleaned configuration, or ValidationError naming each wrong field (`weights.budget_progress`)."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}

    def per_signal(name: str, value: Any, convert, low: float, high: float | None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        if not isinstance(value, dict):
            errors[name] = str(_("give a value for each of the six signals"))
            return {}
        unknown = sorted(set(value) - set(SIGNALS))
        if unknown:
            errors[name] = str(_("unknown signal(s): %(names)s")) % {"names": ", ".join(map(str, unknown))}
        out: dict[str, Any] = {}
        for signal in SIGNALS:
            key = f"{name}.{signal}"
            if signal not in value:
                errors[key] = str(_("missing"))
                continue
            raw = value[signal]
            try:
                if isinstance(raw, bool):
                    raise ValueError
                number = convert(raw)
                if isinstance(number, float) and not math.isfinite(number):
                    raise ValueError
            except (TypeError, ValueError, OverflowError):
                errors[key] = str(_("must be a number"))
                continue
            if number < low or (high is not None and number > high):
                errors[key] = (
                    str(_("must be between %(low)s and %(high)s")) % {"low": low, "high": high}
                    if high is not None
                    else str(_("must be at least %(low)s")) % {"low": low}
                )
                continue
            out[signal] = number
        return out

    def whole(raw: Any) -> int:
        if isinstance(raw, float) and not raw.is_integer():
            raise ValueError
        if isinstance(raw, str):
            raw = raw.strip()
        return int(raw)

    clean["weights"] = per_signal("weights", weights, whole, 0, 100)
    if "weights" not in errors and len(clean["weights"]) == len(SIGNALS):
        total = sum(clean["weights"].values())
        if total != 100:
            errors["weights"] = str(_("the weights must add up to 100 (they add up to %(total)s)")) % {
                "total": total
            }
    clean["windows"] = per_signal("windows", windows, whole, 1, MAX_WINDOW_DAYS)
    clean["targets"] = per_signal("targets", targets, float, 0.01, 1_000_000)
    if clean["targets"].get(BUDGET_PROGRESS, 1.0) != 1.0:
        errors["targets.budget_progress"] = str(_("the budget ladder ends at approved: its target is 1"))
    for name, value, low, high in (
        ("half_life_days", half_life_days, 1, 365),
        ("red_threshold", red_threshold, 1, 100),
    ):
        try:
            if isinstance(value, bool):
                raise ValueError
            number = whole(value)
        except (TypeError, ValueError, OverflowError):
            errors[name] = str(_("must be a whole number"))
            continue
        if not low <= number <= high:
            errors[name] = str(_("must be between %(low)s and %(high)s")) % {"low": low, "high": high}
            continue
        clean[name] = number
    if errors:
        raise ValidationError(errors)
    return clean


@dataclass(slots=True)
class Facts:
    """One lead's aggregated facts at `now`: counts of every fact (any age) and decayed sums in the
    signals' windows. Filled by health.facts."""

    touches: int = 0
    touches_decayed: float = 0.0
    answered_decayed: float = 0.0
    asked_decayed: float = 0.0
    initiated_decayed: float = 0.0
    views: int = 0
    seconds_decayed: float = 0.0
    meetings: int = 0
    attended_decayed: float = 0.0
    held_decayed: float = 0.0
    budget_stage: str | None = None

    @property
    def any(self) -> bool:
        return bool(self.touches or self.views or self.meetings or self.budget_stage)


@dataclass(frozen=True, slots=True)
class Result:
    """The score and, per signal in SIGNALS order, (raw, normalised, contribution); `inputs` are
    the aggregates behind the ratios, for the breakdown."""

    score: int
    values: tuple[tuple[float, float, float], ...]
    inputs: tuple[str, ...]  # one JSON object text per signal

    def signals(self, config: Config) -> list[dict[str, Any]]:
        import json

        return [
            {
                "signal": signal,
                "raw": raw,
                "normalised": norm,
                "weight": config.weights[signal],
                "contribution": contribution,
                "inputs": json.loads(inputs),
            }
            for signal, (raw, norm, contribution), inputs in zip(
                SIGNALS, self.values, self.inputs, strict=True
            )
        ]


def score_lead(facts: Facts, config: Config) -> Result:
    """The score 0–100 and its breakdown (see docs/health.md for each formula).

    Sums of floats from the database may differ in their last bits with the order the rows were
    added in (one lead vs a range): every aggregate is rounded (4 places) before use, so the score
    and the breakdown are the same whichever way the lead was recomputed."""
    targets, weights = config.targets, config.weights
    touches = round(facts.touches_decayed, 4)
    seconds = round(facts.seconds_decayed, 2)
    attended, held = round(facts.attended_decayed, 4), round(facts.held_decayed, 4)
    answered, asked = round(facts.answered_decayed, 4), round(facts.asked_decayed, 4)
    initiated = round(facts.initiated_decayed, 4)
    stage = facts.budget_stage or "unknown"
    measured = (
        (touches, min(1.0, touches / targets[CONTACT_FREQUENCY])),
        (seconds, min(1.0, seconds / targets[MATERIAL_VIEWING])),
        (
            round(attended / held, 4) if held else 0.0,
            min(1.0, attended / max(held, targets[MEETING_ATTENDANCE])),
        ),
        (float(BUDGET_STAGES.index(stage)) if stage in BUDGET_STAGES else 0.0, BUDGET_VALUES.get(stage, 0.0)),
        (
            round(answered / asked, 4) if asked else 0.0,
            min(1.0, answered / max(asked, targets[RESPONSE_RATE])),
        ),
        (initiated, min(1.0, initiated / targets[CUSTOMER_INITIATED])),
    )
    values = []
    total = 0.0
    for signal, (raw, norm) in zip(SIGNALS, measured, strict=True):
        norm = round(norm, 4)
        contribution = round(weights[signal] * norm, 2)
        total += contribution
        values.append((raw, norm, contribution))
    inputs = (
        f'{{"touches": {facts.touches}}}',
        f'{{"views": {facts.views}}}',
        f'{{"attended_decayed": {attended!r}, "held_decayed": {held!r}, "meetings": {facts.meetings}}}',
        "{}",
        f'{{"answered_decayed": {answered!r}, "asked_decayed": {asked!r}}}',
        "{}",
    )
    # Half up, never past 100: the score is what the bars add up to.
    return Result(score=min(100, math.floor(round(total, 2) + 0.5)), values=tuple(values), inputs=inputs)


def breakdown_text(*, result: Result, red: bool, config: Config, at: str) -> str:
    """The `health_score` explanation as JSON text, written without building dicts: the bulk
    recompute writes a million of them (a test checks it against the registered schema)."""
    signals = ", ".join(
        f'{{"signal": "{signal}", "raw": {raw!r}, "normalised": {norm!r}, '
        f'"weight": {config.weights[signal]}, "contribution": {contribution!r}, "inputs": {inputs}}}'
        for signal, (raw, norm, contribution), inputs in zip(
            SIGNALS, result.values, result.inputs, strict=True
        )
    )
    return (
        f'{{"kind": "health_score", "version": {EXPLANATION_VERSION}, "score": {result.score}, '
        f'"model_version": {config.version}, '
        f'"at": "{at}", "half_life_days": {config.half_life_days}, "red_threshold": {config.red_threshold}, '
        f'"red": {"true" if red else "false"}, "signals": [{signals}]}}'
    )
