"""``manage.py promise_config load FILE`` / ``manage.py promise_config dump``: the promise configuration as JSON.

The format is in docs/PROMISE.md; ``quai/promise/config/demo.json`` is the demo site's. A file with problems is
refused whole, each problem printed with its path in the document.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from quai.core.errors import QuaiError
from quai.promise.services import promise_config_dump, promise_config_load


class Command(BaseCommand):
    help = "Load (or dump) the delivery-promise configuration: sites' calendars, carrier services, zones, transit."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        load = sub.add_parser("load", help="Load a JSON configuration file (see docs/PROMISE.md).")
        load.add_argument("file", type=Path)
        sub.add_parser("dump", help="Print the configuration as JSON (a file 'load' takes back).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "dump":
            self.stdout.write(json.dumps(promise_config_dump(), indent=2, ensure_ascii=False))
            return
        path: Path = options["file"]
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error}") from None
        except json.JSONDecodeError as error:
            raise CommandError(f"{path} is not JSON: line {error.lineno}, column {error.colno}: {error.msg}") from None
        try:
            counts = promise_config_load(document=document)
        except QuaiError as error:
            problems = "\n".join(
                f"  {e['path'] or '(document)'}: {e['message']}" for e in error.details.get("errors", [])
            )
            raise CommandError(f"{error.message}\n{problems}") from None
        self.stdout.write(
            f"Loaded {counts['sites']} site(s), {counts['services']} service(s), {counts['lanes']} lane(s), "
            f"{counts['closures']} closure(s)."
        )
