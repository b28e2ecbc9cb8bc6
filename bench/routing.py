"""Routing benchmarks (issue 4, item 9). Being built: see routing.run."""

from __future__ import annotations

from typing import Any

TITLE = "routing: decisions per second (50 rules, 200 reps) and replay of 100k leads"


def run(databases: list[str]) -> list[dict[str, Any]]:
    return []


def table(rows: list[dict[str, Any]]) -> str:
    return "(routing benchmarks not built yet)" if not rows else ""
