"""`salesloop token create USERNAME`: prints a new API token (shown once, stored hashed)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from salesloop.accounts.models import User
from salesloop.accounts.services import token_create


class Command(BaseCommand):
    help = "Manage API tokens: `token create USERNAME [--name NAME]` prints the token."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a token and print it")
        create.add_argument("username")
        create.add_argument("--name", default="cli")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None or not user.is_active:
            raise CommandError(f"no active user {options['username']!r}")
        _, token = token_create(actor=None, user=user, name=options["name"])
        self.stdout.write(token)
