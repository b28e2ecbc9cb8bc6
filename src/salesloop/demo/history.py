"""Plausible stage histories for demo leads: a small random walk through the pipeline.

Time runs from the lead's creation to `now`: at each stage the lead dwells for a while (longer in
later stages, sometimes much longer — stalled deals), then moves forward, back (回退) or is lost; the
walk stops at a win, a loss or when the next move would fall after `now`. So older leads are further
along and mostly closed, recent ones mostly open — like a real funnel.

Everything here is plain Python on integer epoch seconds: it runs a few million times per benchmark.
"""

from __future__ import annotations

import math
import random
from typing import NamedTuple

from salesloop.demo.names import BACKWARD_NOTES, LOST_REASONS_BY_STAGE, POOL_LOST_REASONS

DAY = 86_400
HOUR = 3_600
SHANGHAI_OFFSET = 8 * HOUR  # no daylight saving in China: a fixed offset is exact

# Who made a move; the generator maps these to user ids.
ACTOR_SYSTEM = 0  # intake: the lead entering the pipeline
ACTOR_OWNER = 1
ACTOR_MANAGER = 2  # closing an unassigned lead out of the region's pool

OPEN, WON, LOST = "open", "won", "lost"

# Median days in a stage before the next move, by stage index (screening, needs, demo, quote).
_DWELL_MEDIAN_DAYS = [4.0, 9.0, 12.0, 16.0]
_DWELL_SIGMA = 0.7
_STALL_CHANCE, _STALL_FACTOR = 0.08, 4.0
# Chances of moving forward and backward when leaving a stage; the rest is lost.
_FORWARD = [0.55, 0.62, 0.60, 0.52]
_BACKWARD = [0.0, 0.0, 0.07, 0.12]
_MAX_BACKWARD_MOVES = 2
# Screening depends on where the lead came from: referrals are warm, ad forms are noisy.
_SCREENING_FORWARD_BY_SOURCE = {"referral": 0.78, "douyin": 0.45, "card": 0.50, "wecom": 0.60}
_REFERRAL_SKIP_CHANCE = 0.2  # a referred customer often skips 需求确认: the referrer did that work
_POOL_CLOSE_CHANCE = 0.6


class Move(NamedTuple):
    from_index: int | None  # stage index; None for the entry
    to_index: int
    from_status: str
    to_status: str
    at: int  # epoch seconds
    reason: str
    note: str
    actor: int  # ACTOR_*
    dwell_seconds: int | None


def _working_time(moment: int, rng: random.Random) -> int:
    """Move `moment` into the working day (09:00–21:00 Shanghai): people move deals at work."""
    second_of_day = (moment + SHANGHAI_OFFSET) % DAY
    if second_of_day < 9 * HOUR:
        return moment + (9 * HOUR - second_of_day) + int(rng.random() * 3 * HOUR)
    if second_of_day >= 21 * HOUR:
        return moment + (DAY - second_of_day) + 9 * HOUR + int(rng.random() * 3 * HOUR)
    return moment


def _dwell(stage: int, rng: random.Random) -> int:
    median = _DWELL_MEDIAN_DAYS[stage] if stage < len(_DWELL_MEDIAN_DAYS) else 8.0
    days = median * math.exp(rng.gauss(0.0, _DWELL_SIGMA))
    if rng.random() < _STALL_CHANCE:
        days *= _STALL_FACTOR
    return int(days * DAY) + 60


def stage_history(
    *,
    rng: random.Random,
    created: int,
    now: int,
    stage_count: int,
    source: str,
    pooled: bool,
    rework: float = 0.0,
) -> list[Move]:
    """The moves of one lead, oldest first; the first enters stage 0 at `created`, none is after
    `now`. The last stage of the pipeline is the won stage (entering it closes the lead as won).

    `rework` (0 by default; benchmarks use 0.4) makes busier histories for load tests: that much
    more chance of moving back from every stage after the first, more of moving on from the
    first stage and a quarter as much from the others, fewer losses and more back-and-forth
    allowed — about 5 moves a lead at 0.4."""
    moves = [Move(None, 0, "", OPEN, created, "", "", ACTOR_SYSTEM, None)]
    if pooled:
        # Nobody owns it: it waits in the region's pool until the manager closes the hopeless ones.
        closing = _working_time(created + _dwell(0, rng), rng)
        if closing <= now and rng.random() < _POOL_CLOSE_CHANCE:
            reason = POOL_LOST_REASONS[int(rng.random() * len(POOL_LOST_REASONS))]
            moves.append(Move(0, 0, OPEN, LOST, closing, reason, "", ACTOR_MANAGER, closing - created))
        return moves

    last = stage_count - 1
    stage, entered, backward_moves = 0, created, 0
    while True:
        at = _working_time(entered + _dwell(stage, rng), rng)
        if at > now:
            return moves
        dwell = at - entered
        forward = (
            _SCREENING_FORWARD_BY_SOURCE.get(source, _FORWARD[0])
            if stage == 0
            else (_FORWARD[stage] if stage < len(_FORWARD) else 0.58)
        )
        backward = _BACKWARD[stage] if stage < len(_BACKWARD) else 0.08
        if rework:
            backward = backward + rework if stage > 0 else 0.0
            forward = min(forward + (rework if stage == 0 else rework / 4), 0.95 - backward)
        if backward_moves >= _MAX_BACKWARD_MOVES + int(rework * 20) or stage == 0:
            backward = 0.0
        roll = rng.random()
        if roll < forward:
            target = stage + 1
            if stage == 0 and source == "referral" and last > 2 and rng.random() < _REFERRAL_SKIP_CHANCE:
                target = 2
            if target >= last:
                moves.append(Move(stage, last, OPEN, WON, at, "", "", ACTOR_OWNER, dwell))
                return moves
            moves.append(Move(stage, target, OPEN, OPEN, at, "", "", ACTOR_OWNER, dwell))
            stage, entered = target, at
        elif roll < forward + backward:
            note = BACKWARD_NOTES[int(rng.random() * len(BACKWARD_NOTES))]
            moves.append(Move(stage, stage - 1, OPEN, OPEN, at, "", note, ACTOR_OWNER, dwell))
            stage, entered, backward_moves = stage - 1, at, backward_moves + 1
        else:
            reasons = LOST_REASONS_BY_STAGE[min(stage, len(LOST_REASONS_BY_STAGE) - 1)]
            reason = reasons[int(rng.random() * len(reasons))]
            moves.append(Move(stage, stage, OPEN, LOST, at, reason, "", ACTOR_OWNER, dwell))
            return moves


def stage_entered_at(moves: list[Move]) -> int:
    """When the lead entered the stage it is in now — the same rule as
    `pipeline.services.lead_projection_rebuild`: a close within a stage does not re-enter it."""
    last = moves[-1]
    for move in reversed(moves):
        if move.to_index != last.to_index:
            break
        if move.from_index != move.to_index:
            return move.at
    return last.at
