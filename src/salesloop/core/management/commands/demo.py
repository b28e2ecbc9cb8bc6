"""`salesloop demo`: migrate, load the demo organisation if the database is empty, print the logins,
serve. What `make demo` runs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from salesloop.accounts.models import User


class Command(BaseCommand):
    help = "Prepare the demo database (migrate, seed if empty), print the demo logins and serve."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--bind", default="127.0.0.1:8000")
        parser.add_argument("--leads", type=int, default=5000)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--no-serve", action="store_true", help="prepare and print, but do not serve")

    def handle(self, *args: Any, **options: Any) -> None:
        from salesloop.demo.generator import DEMO_PASSWORD, demo_logins

        call_command("migrate", interactive=False, verbosity=0)
        if not User.objects.exists():
            self.stdout.write(f"Loading the demo organisation ({options['leads']} leads)…")
            call_command("seed", leads=options["leads"], seed=options["seed"])
            from salesloop.demo.org import demo_org_ensure
            from salesloop.demo.routing import demo_routing_ensure

            routed = demo_routing_ensure(demo_org_ensure())
            self.stdout.write(
                f"Routing: a region round-robin in force, an industry-first draft; {routed} pool leads routed"
            )
        host = options["bind"]
        self.stdout.write("")
        self.stdout.write(
            f"salesloop is at http://{host}/  (database: {settings.DATABASES['default']['NAME']})"
        )
        self.stdout.write(f"Demo logins — password for all: {DEMO_PASSWORD}")
        for username, role, region in demo_logins():
            self.stdout.write(f"  {username:<20} {role:<10} {region or ''}")
        self.stdout.write("")
        if not options["no_serve"]:
            call_command("serve", bind=host)
