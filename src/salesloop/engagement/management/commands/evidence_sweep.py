"""`salesloop evidence_sweep [--days 7]`: remove check-in upload slots never claimed and stray part
files (docs/checkins.md). Idempotent: run it daily (cron)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from salesloop.engagement.checkin_services import UPLOAD_KEEP, evidence_uploads_sweep


class Command(BaseCommand):
    help = "Remove check-in evidence uploads no check-in claimed within --days days, and stray part files."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--days", type=int, default=UPLOAD_KEEP.days, help="keep slots this many days")

    def handle(self, *args: Any, days: int, **options: Any) -> None:
        if days < 1:
            raise CommandError("--days must be at least 1: a phone may still be sending today's photos")
        swept = evidence_uploads_sweep(keep=dt.timedelta(days=days))
        self.stdout.write(f"{swept.slots} unclaimed upload(s) and {swept.files} stray file(s) removed")
