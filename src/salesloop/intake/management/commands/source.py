"""`salesloop source create --kind K --name N [--secret S]
[--wecom-token T --wecom-aes-key K --wecom-corp-id C]`."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from salesloop.intake.models import SourceKind
from salesloop.intake.services import source_create


class Command(BaseCommand):
    help = "Manage intake sources: `source create --kind K --name N ...` prints id, slug and hook_url."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="configure a channel")
        create.add_argument("--kind", required=True, choices=SourceKind.values)
        create.add_argument("--name", required=True)
        create.add_argument("--secret", default="", help="HMAC secret (generated when omitted)")
        create.add_argument("--slug", default=None, help="the /hooks/<slug> path (random when omitted)")
        create.add_argument("--wecom-token", default="")
        create.add_argument("--wecom-aes-key", default="")
        create.add_argument("--wecom-corp-id", default="")
        create.add_argument("--campaign", default="", help="default campaign of this source's leads")
        create.add_argument("--mapping", default="", help='field mapping as JSON, e.g. {"phone": "mobile"}')

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            mapping = json.loads(options["mapping"]) if options["mapping"] else {}
        except ValueError as exc:
            raise CommandError(f"--mapping: not JSON: {exc}") from exc
        try:
            source = source_create(
                actor=None,
                kind=options["kind"],
                name=options["name"],
                secret=options["secret"],
                slug=options["slug"],
                wecom_token=options["wecom_token"],
                wecom_aes_key=options["wecom_aes_key"],
                wecom_corp_id=options["wecom_corp_id"],
                default_campaign=options["campaign"],
                field_mapping=mapping,
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"--{k.replace('_', '-')}: {' '.join(v)}" for k, v in exc.message_dict.items()
            )
            raise CommandError(problems) from exc
        answer = {
            "id": source.pk,
            "slug": source.slug,
            "kind": source.kind,
            "name": source.name,
            "hook_url": f"{settings.SITE_URL}/hooks/{source.slug}",
        }
        if source.kind == SourceKind.WEB_FORM:
            answer["form_url"] = f"{settings.SITE_URL}/f/{source.slug}"
        if source.secret and not options["secret"]:
            answer["secret"] = source.secret
        self.stdout.write(json.dumps(answer, ensure_ascii=False))
