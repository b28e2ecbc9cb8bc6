"""`salesloop health_recompute [--all] [--lead ID] [--silent]`: the daily recompute (SPEC C3.2)."""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from salesloop.health.services import lead_recompute, leads_recompute


class Command(BaseCommand):
    help = "Recompute health scores: every open lead (the daily decay), every lead with --all, or one."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--all", action="store_true", help="closed leads too")
        parser.add_argument("--lead", type=int, help="only this lead")
        parser.add_argument(
            "--silent", action="store_true", help="record red states without notifying (a first scoring)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        if options["lead"]:
            outcome = lead_recompute(lead_id=options["lead"])
            if not outcome.leads:
                raise CommandError(f"no lead {options['lead']}")
        else:

            def progress(done: int, total: int) -> None:
                if options["verbosity"] > 1:
                    print(f"{done:,}/{total:,} lead ids", file=sys.stderr, flush=True)

            outcome = leads_recompute(
                open_only=not options["all"], notify=not options["silent"], progress=progress
            )
        seconds = time.perf_counter() - started
        self.stdout.write(
            f"{outcome.leads:,} leads, {outcome.scored:,} scored, {outcome.changed:,} changed, "
            f"{outcome.crossed:,} went red in {seconds:.1f} s"
        )
