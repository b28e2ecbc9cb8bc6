"""`salesloop insights_facts_rebuild`: rebuild the indicators' derived tables from the stage moves
and touches (after a bulk load that bypassed the services, or to check they match the facts)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Rebuild insights' indicator facts (per-lead arrival, stage stays, outbound touches)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--quiet", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        from salesloop.insights.indicators.facts import indicator_facts_rebuild

        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            if not options["quiet"]:
                self.stdout.write(f"  {done:>10,} / {total:,} lead ids")

        leads = indicator_facts_rebuild(progress=progress)
        if not options["quiet"]:
            self.stdout.write(
                f"Rebuilt the indicator facts of {leads:,} leads in {time.perf_counter() - started:.1f} s"
            )
