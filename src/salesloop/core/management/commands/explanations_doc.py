from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand

from salesloop.core import explanations


class Command(BaseCommand):
    help = "Write the JSON schemas of every explanation kind as Markdown (docs/explanations.md)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--output", default="docs/explanations.md")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["output"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(explanations.markdown_doc(), encoding="utf-8")
        self.stdout.write(f"wrote {path}")
