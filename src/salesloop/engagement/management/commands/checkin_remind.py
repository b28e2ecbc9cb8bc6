"""`salesloop checkin_remind`: remind reps with no check-in today once their reminder hour has come
(SPEC C4.1). Idempotent: run it every few minutes (cron, or the `checkin_remind_due` task)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from salesloop.engagement.checkin_services import checkins_remind


class Command(BaseCommand):
    help = "Send the daily check-in reminder to reps with no check-in today (once per rep and day)."

    def handle(self, *args: Any, **options: Any) -> None:
        sent = checkins_remind()
        self.stdout.write(f"{sent} reminder(s) sent")
