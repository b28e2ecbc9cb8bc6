"""The `salesloop` console command: our management commands plus all of Django's."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesloop.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["salesloop", *sys.argv[1:]])


if __name__ == "__main__":
    main()
