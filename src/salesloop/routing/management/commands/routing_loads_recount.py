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
        from salesloop.routing.loads import loads_kept_rows, loads_recount, triggers_install, triggers_present

        with transaction.atomic():
            before = loads_kept_rows()
            triggers = triggers_present(connection)
            triggers_install(connection)
            loads_recount(connection)
            after = loads_kept_rows()
        self.stdout.write(
            f"{len(after[0])} users with open leads ({_corrected(before[0], after[0])} corrected), "
            f"{len(after[1])} quarter hours of assignments ({_corrected(before[1], after[1])} corrected); "
            f"triggers {'all present' if len(triggers) == len(triggers_present(connection)) else 'put back'}"
        )


def _corrected(before: dict[Any, int], after: dict[Any, int]) -> int:
    """How many keys the recount changed, added or took away."""
    return sum(before.get(key) != n for key, n in after.items()) + len(set(before) - set(after))
