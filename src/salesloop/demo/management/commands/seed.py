"""`salesloop seed [--seed N] [--leads N] [--quiet]`: the demo organisation plus N generated leads."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Create the demo organisation (regions, teams, 23 users) if missing and add N generated leads "
        "with customers, contacts and stage histories. Deterministic for a given --seed and database."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
        parser.add_argument("--leads", type=int, default=5000, help="number of leads to add (default 5000)")
        parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
        parser.add_argument(
            "--rework",
            type=float,
            default=0.0,
            help="busier stage histories for benchmarks: 0 (default) ~2.8 moves a lead, 0.4 ~5",
        )
        parser.add_argument(
            "--touches",
            action="store_true",
            help="also add an outbound call per stage move and rebuild the indicator facts (C9)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from salesloop.demo.generator import seed_run

        leads: int = options["leads"]
        if leads < 0:
            raise CommandError("--leads must be zero or more")
        quiet: bool = options["quiet"]

        def progress(done: int, total: int, seconds: float) -> None:
            if not quiet:
                rate = done / seconds if seconds else 0.0
                self.stdout.write(f"  {done:>10,} / {total:,} leads  ({rate:,.0f} leads/s)")

        if not 0.0 <= options["rework"] <= 0.5:
            raise CommandError("--rework must be between 0 and 0.5")
        result = seed_run(seed=options["seed"], leads=leads, progress=progress, rework=options["rework"])
        if result.first_lead_id is not None and result.last_lead_id is not None:
            from salesloop.insights.indicators.facts import indicator_facts_rebuild

            if options["touches"]:
                from salesloop.demo.touches import touches_seed

                touches = touches_seed(first_lead_id=result.first_lead_id, last_lead_id=result.last_lead_id)
                if not quiet:
                    self.stdout.write(f"Added {touches:,} outbound touches")
            # Seeded leads and moves are bulk-inserted, past the services that keep the indicator
            # facts (C9): derive them once for the whole database.
            indicator_facts_rebuild()
        if not quiet:
            outcomes = result.outcomes
            self.stdout.write(
                f"Seeded {result.leads:,} leads ({outcomes['open']:,} open, {outcomes['won']:,} won, "
                f"{outcomes['lost']:,} lost), {result.customers:,} customers, {result.contacts:,} contacts, "
                f"{result.moves:,} stage moves, {result.users_created} new users "
                f"in {result.seconds:.1f} s: {result.leads_per_second:,.0f} leads/s"
            )
