"""`manage.py demo [--if-empty]`: load the demo data (idempotent) and say how to log in."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from tqdm import tqdm

from quai.demo.services import DEMO_PASSWORD, STEPS, demo_is_loaded, demo_load
from quai.tenants.models import Merchant


class Command(BaseCommand):
    help = "Load the demo: a 3PL near Lyon with ~2,000 locations, two merchants and 500 SKUs (idempotent)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing when the database already holds merchants"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and Merchant.objects.exists():
            self.stdout.write("Demo: the database already holds data, nothing loaded.")
        else:
            with tqdm(total=len(STEPS), desc="Loading the demo", unit="step") as bar:

                def progress(label: str) -> None:
                    bar.set_postfix_str(label)
                    bar.update(1)

                report = demo_load(progress=progress)
            created = ", ".join(f"{n} {what}" for what, n in report.created.items()) or "nothing new"
            self.stdout.write(self.style.SUCCESS(f"Demo loaded: {created}."))
            for code, secret in report.api_keys.items():
                self.stdout.write(f"  API key of merchant '{code}' (shown once): {secret}")
        if demo_is_loaded():
            self.stdout.write(
                "\nQuai is ready at http://127.0.0.1:8000/\n"
                f"  back office:      http://127.0.0.1:8000/admin/  (user admin, password {DEMO_PASSWORD})\n"
                "  operator screens: http://127.0.0.1:8000/ops/  (user reception, same password)\n"
                "  API docs:         http://127.0.0.1:8000/api/v1/docs\n"
            )
