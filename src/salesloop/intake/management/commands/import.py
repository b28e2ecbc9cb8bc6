"""`salesloop import FILE [--mapping JSON] [--user USERNAME] [--dry-run] [--json]`

Imports a CSV or XLSX file of leads the way the import page does (SPEC C1.5) — the same job, the
same rules, the same report, the same routing of new leads — but runs it in this process instead
of a task worker, and prints the counts, the rate and (with --json) where the time went. With
--dry-run it prints the column mapping and the preview and writes nothing but the job.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser

from salesloop.accounts.models import User
from salesloop.intake.imports import services
from salesloop.intake.imports.files import ImportFileError
from salesloop.intake.imports.models import ImportStatus


class Command(BaseCommand):
    help = "Import leads from a CSV or Excel (.xlsx, .xls) file, as the import page does."
    # The system checks load every URL module and API schema, which an import never uses (~0.5 s
    # of a run, measured); `salesloop check` and the server still run them.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the CSV, .xlsx or .xls file")
        parser.add_argument(
            "--mapping",
            help='columns → fields as JSON: {"手机号": "mobile", "公司": "company"} or a list in column '
            "order; guessed from the headers when omitted",
        )
        parser.add_argument("--user", help="who imports (a manager, director or admin); audited as them")
        parser.add_argument("--dry-run", action="store_true", help="show the mapping and the preview only")
        parser.add_argument("--json", action="store_true", help="print the result as one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        actor = self._actor(options.get("user"))
        mapping = self._mapping(options.get("mapping"))
        began = time.monotonic()
        try:
            with path.open("rb") as handle:
                job = services.import_job_create(
                    actor=actor,
                    upload=File(handle, name=path.name),
                    name=path.name,
                    mapping=mapping,
                    require_identity=not options["dry_run"],
                )
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        inspected = time.monotonic()
        if not options["json"]:
            self._describe(job)
        if options["dry_run"]:
            self._preview(job)
            return
        try:
            services.import_start(actor=actor, job=job, enqueue=False)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        timings = services.RunTimings()
        job = services.import_run(job_id=job.pk, timings=timings)
        finished = time.monotonic()
        result = {
            "job": job.pk,
            "status": job.status,
            "rows": job.rows_done,
            "created": job.created,
            "touches": job.touches,
            "duplicates_in_file": job.duplicates_in_file,
            "rejected": job.rejected,
            "routed": timings.routed,
            "inspect_seconds": round(inspected - began, 3),
            "run_seconds": round(finished - inspected, 3),
            "seconds": round(finished - began, 3),
            "rows_per_s": round(job.rows_done / (finished - began)) if finished > began else None,
            "phases": timings.as_dict(),
            "error": job.error,
        }
        if options["json"]:
            self.stdout.write(json.dumps(result, ensure_ascii=False))
        else:
            self.stdout.write(
                f"{job.status}: {job.rows_done} rows in {result['seconds']} s "
                f"({result['rows_per_s']} rows/s) — {job.created} new leads, {job.touches} touches, "
                f"{job.duplicates_in_file} duplicates in the file, {job.rejected} rejected, "
                f"{timings.routed} routed to an owner"
            )
            if job.rejected:
                self.stdout.write(f"rejected rows: /intake/imports/{job.pk}/rejected.csv")
        if job.status != ImportStatus.DONE:
            raise CommandError(job.error or f"the import ended {job.status}")

    def _actor(self, username: str | None) -> User | None:
        if not username:
            return None  # the operator at the console; audited without a user
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no such user: {username}")
        if not services.may_import(user):
            raise CommandError(f"{username} may not import leads (managers, directors and admins may)")
        return user

    def _mapping(self, text: str | None) -> Any:
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            raise CommandError(f"--mapping is not JSON: {exc}") from exc

    def _describe(self, job: Any) -> None:
        encoding = f", {job.encoding}" if job.encoding else ""
        self.stdout.write(f"{job.original_name}: {job.format}{encoding}, {job.rows_total} rows")
        for header, field in zip(job.headers, job.mapping, strict=False):
            self.stdout.write(f"  {header} → {field or '(not imported)'}")

    def _preview(self, job: Any) -> None:
        for row in services.import_preview(job=job):
            who = row.candidate.name if row.candidate else ""
            phone = row.candidate.phone if row.candidate else ""
            self.stdout.write(f"  row {row.row_number}: {row.outcome} {who} {phone} {row.reason}".rstrip())
