"""`salesloop bots_deliver [--until-idle]`: send what the robots' outbox holds due (docs/alerts.md)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from salesloop.notify.outbox import deliveries_deliver


class Command(BaseCommand):
    help = "Deliver due alert messages to WeCom / DingTalk group robots (run it every minute)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--until-idle", action="store_true", help="repeat until nothing is due")

    def handle(self, *args: Any, **options: Any) -> None:
        total = {"claimed": 0, "sent": 0, "retrying": 0, "failed": 0, "uncertain": 0}
        while True:
            run = deliveries_deliver()
            for name in total:
                total[name] += getattr(run, name)
            if not options["until_idle"] or not run.claimed:
                break
        self.stdout.write(
            f"{total['claimed']} claimed, {total['sent']} sent, {total['retrying']} to retry, "
            f"{total['failed']} failed, {total['uncertain']} uncertain"
        )
