"""Routing state held in memory: for the sandbox's replays (nothing touches the database) and for
routing a whole import chunk at once (seeded from, then written back to, the database)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable

from salesloop.core import clock
from salesloop.routing.engine import Rotation


class MemoryState:
    """Loads and rotations as dictionaries. `record` advances them as the engine assigns, so a run
    of decisions sees its own earlier ones, exactly as live routing would."""

    def __init__(
        self,
        *,
        open_leads: dict[int, int] | None = None,
        received: dict[tuple[int, dt.date], int] | None = None,
        rotations: dict[str, Rotation] | None = None,
        rotation_loader: Callable[[str], Rotation] | None = None,
        tz: dt.tzinfo | None = None,
    ) -> None:
        self.open_leads: defaultdict[int, int] = defaultdict(int, open_leads or {})
        self.received: defaultdict[tuple[int, dt.date], int] = defaultdict(int, received or {})
        self.rotations: dict[str, Rotation] = dict(rotations or {})
        self._loader = rotation_loader
        self._tz = tz or clock.org_tz()
        self.used_keys: set[str] = set()
        self._day: tuple[dt.datetime, dt.date] | None = None

    def day(self, at: dt.datetime) -> dt.date:
        """The local day of `at` (the last answer kept: a batch decides every lead at one moment)."""
        last = self._day
        if last is not None and last[0] is at:
            return last[1]
        day = at.astimezone(self._tz).date()
        self._day = (at, day)
        return day

    def rotation(self, key: str) -> Rotation:
        rotation = self.rotations.get(key)
        if rotation is None:
            rotation = self.rotations[key] = self._loader(key) if self._loader else Rotation()
        return rotation

    def loads(self, user_ids: list[int], at: dt.datetime) -> tuple[dict[int, int], dict[int, int]]:
        day = self.day(at)
        open_leads, received = self.open_leads, self.received
        return (
            {u: open_leads[u] for u in user_ids if u in open_leads},
            {u: received[key] for u in user_ids if (key := (u, day)) in received},
        )

    def record(self, key: str, rotation: Rotation, user_id: int, at: dt.datetime) -> None:
        rotation.advance(user_id)
        self.used_keys.add(key)
        self.open_leads[user_id] += 1
        self.received[(user_id, self.day(at))] += 1

    def close(self, user_id: int) -> None:
        """A lead of user_id closed (won, lost): one open lead fewer (replays use it)."""
        if self.open_leads[user_id] > 0:
            self.open_leads[user_id] -= 1
