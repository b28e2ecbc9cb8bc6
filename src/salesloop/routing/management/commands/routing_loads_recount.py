"""`salesloop routing_loads_recount`: count routing's loads again from the leads and assignments
(routing/loads.py keeps them with triggers; this puts any missing trigger back and recounts — after
restoring a backup taken without them, or to check them), and say what changed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import connection, transaction


class Command(BaseCommand):
    help = "Count routing's kept loads (open leads, assignments per quarter hour) again from the rows."

    def handle(self, *args: Any, **options: Any) -> None:
        from salesloop.routing.loads import loads_recount, triggers_install, triggers_present
        from salesloop.routing.models import AssignedInQuarter, OpenLeads

        def kept() -> tuple[dict[int, int], dict[tuple[int, int], int]]:
            open_leads = {r.user_id: r.open_leads for r in OpenLeads.objects.all() if r.open_leads}
            quarters = {
                (r.user_id, r.quarter): r.assigned for r in AssignedInQuarter.objects.all() if r.assigned
            }
            return open_leads, quarters

        with transaction.atomic():
            before = kept()
            triggers = triggers_present(connection)
            triggers_install(connection)
            loads_recount(connection)
            after = kept()
        changed = sum(before[0].get(u) != n for u, n in after[0].items()) + len(
            set(before[0]) - set(after[0])
        )
        quarters = sum(before[1].get(k) != n for k, n in after[1].items()) + len(
            set(before[1]) - set(after[1])
        )
        self.stdout.write(
            f"{len(after[0])} users with open leads ({changed} corrected), "
            f"{len(after[1])} quarter hours of assignments ({quarters} corrected); "
            f"triggers {'all present' if len(triggers) == len(triggers_present(connection)) else 'put back'}"
        )
