"""``manage.py stock_check``: recompute every stock number from the ledger and report drift (expected: none)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from quai.inventory.models import StockMovement
from quai.inventory.selectors import stock_drift


class Command(BaseCommand):
    help = "Recompute quantities, reservations and SKU counters from the ledger; exit 1 if anything drifted."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")
        parser.add_argument("--limit", type=int, default=50, help="how many drifts to list (default 50)")

    def handle(self, *args: Any, **options: Any) -> None:
        total = StockMovement.objects.count()
        with tqdm(total=total, unit="mvt", desc="ledger", disable=bool(options["no_progress"])) as bar:
            drifts = stock_drift(progress=bar.update)
        if not drifts:
            self.stdout.write(self.style.SUCCESS(f"No drift: {total} movement(s) agree with every stored quantity."))
            return
        for drift in drifts[: options["limit"]]:
            self.stdout.write(f"{drift.what:15} {drift.key}: stored {drift.stored}, ledger says {drift.expected}")
        if len(drifts) > options["limit"]:
            self.stdout.write(f"… and {len(drifts) - options['limit']} more")
        raise CommandError(f"{len(drifts)} drift(s) found between the ledger and the stored quantities.")
