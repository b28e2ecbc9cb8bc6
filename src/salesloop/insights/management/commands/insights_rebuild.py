"""`salesloop insights_rebuild`: recompute the funnel rollups from the stage moves (SPEC C5,
DESIGN.md rule 1). The result equals what the moves added as they were appended."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Rebuild the funnel heat-map and cycle-time rollups from the stage moves."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--quiet", action="store_true", help="print nothing but errors")

    def handle(self, *args: Any, **options: Any) -> None:
        from salesloop.insights.funnel_rollup import funnel_rollup_rebuild

        quiet: bool = options["quiet"]
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            if not quiet:
                self.stdout.write(f"  {done:>10,} / {total:,} leads")

        leads = funnel_rollup_rebuild(progress=progress)
        if not quiet:
            self.stdout.write(
                f"Rebuilt the funnel rollups from {leads:,} leads in {time.perf_counter() - started:.1f} s"
            )
