"""``manage.py events_catalogue``: write docs/EVENTS.md from the event registry (``--check``: only compare)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from quai.core.event_catalogue import catalogue_markdown, catalogue_path


class Command(BaseCommand):
    help = "Write the event catalogue (docs/EVENTS.md) from the registry; with --check, exit 1 if it is out of date."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check", action="store_true", help="write nothing; fail if the file is out of date")
        parser.add_argument("--output", type=Path, default=None, help="where to write (default docs/EVENTS.md)")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["output"] or catalogue_path()
        expected = catalogue_markdown()
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if options["check"]:
            if current != expected:
                raise CommandError(f"{path} is out of date: run `manage.py events_catalogue` and commit it.")
            self.stdout.write(self.style.SUCCESS(f"{path} is up to date."))
            return
        if current == expected:
            self.stdout.write(f"{path} was already up to date.")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(expected, encoding="utf-8")
        self.stdout.write(self.style.SUCCESS(f"Wrote {path}."))
