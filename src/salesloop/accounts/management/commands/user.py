"""`salesloop user create --username U --password P --role R [--region NAME]`."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from salesloop.accounts.models import Region
from salesloop.accounts.services import user_as_dict, user_create
from salesloop.core.roles import Role


class Command(BaseCommand):
    help = "Manage users: `user create --username U --password P --role R [--region NAME]`."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a user")
        create.add_argument("--username", required=True)
        create.add_argument("--password", required=True)
        create.add_argument("--role", required=True, choices=Role.values)
        create.add_argument("--region", help="region name (华东) or code (east); required for managers")
        create.add_argument("--display-name", default="")
        create.add_argument("--email", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        region = None
        if options.get("region"):
            region = Region.objects.filter(Q(name=options["region"]) | Q(code=options["region"])).first()
            if region is None:
                known = ", ".join(Region.objects.values_list("name", flat=True)) or "none yet"
                raise CommandError(f"--region: no region {options['region']!r} (known: {known})")
        try:
            user = user_create(
                actor=None,
                username=options["username"],
                password=options["password"],
                role=options["role"],
                region=region,
                display_name=options["display_name"],
                email=options["email"],
            )
        except ValidationError as exc:
            problems = "; ".join(f"--{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            raise CommandError(problems) from exc
        self.stdout.write(json.dumps(user_as_dict(user), ensure_ascii=False))
