"""``manage.py outbox_purge [--days N] [--dry-run] [--chunk N]``: delete the relayed outbox events older than the
retention and their handled rows now (beat does it daily), printing the rows purged so far and a summary."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from quai.core.management.purge_options import purge_arguments, purge_options_check
from quai.core.retention import PurgeResult, outbox_purge


class Command(BaseCommand):
    help = (
        "Delete relayed outbox events older than the retention (QUAI_OUTBOX_RETENTION_DAYS, or --days) and their "
        "handled rows, in chunks; pending and failing events are never deleted. --dry-run only counts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        purge_arguments(parser, days_help="keep this many days (default QUAI_OUTBOX_RETENTION_DAYS)", unit="events")

    def handle(self, *args: Any, **options: Any) -> None:
        purge_options_check(options)
        days = settings.QUAI_OUTBOX_RETENTION_DAYS if options["days"] is None else options["days"]
        dry_run = options["dry_run"]
        verb = "would purge" if dry_run else "purged"

        def progress(result: PurgeResult) -> None:
            self.stdout.write(
                f"  chunk {result.chunks}: {verb} {result.events:,} events and {result.handled:,} handled rows so far"
            )

        result = outbox_purge(days=days, chunk=options["chunk"], dry_run=dry_run, progress=progress)
        if result.skipped:
            self.stdout.write(f"Nothing purged: {result.skipped}.")
            return
        cutoff = result.cutoff.astimezone(UTC) if result.cutoff else None
        summary = (
            f"{'Dry run: would purge' if dry_run else 'Purged'} {result.events:,} outbox events and "
            f"{result.handled:,} handled rows relayed before {cutoff:%Y-%m-%d %H:%M} UTC "
            f"({days} days kept) in {result.chunks} chunks."
        )
        self.stdout.write(self.style.SUCCESS(summary))
