"""``manage.py integration_logs_purge [--days N] [--dry-run] [--chunk N]``: delete the finished webhook deliveries
(with their attempts), shop deliveries and shop calls older than their retention now (beat does it daily), printing
the rows purged so far after each chunk and a summary."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from quai.core.management.purge_options import purge_arguments, purge_options_check
from quai.integrations.retention import INBOUND_DEDUPE_DAYS, LogsPurgeResult, integration_logs_purge


def _utc(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if moment else "never (kept)"


class Command(BaseCommand):
    help = (
        "Delete finished webhook deliveries and their attempts (older than QUAI_WEBHOOK_LOG_RETENTION_DAYS), "
        "processed or failed shop deliveries and finished shop calls (older than QUAI_SHOP_LOG_RETENTION_DAYS; shop "
        f"deliveries at least {INBOUND_DEDUPE_DAYS} days), in chunks; --days sets both. Pending, retrying and held "
        "rows are never deleted. --dry-run only counts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        purge_arguments(
            parser,
            days_help="keep this many days of every log (default: QUAI_WEBHOOK_LOG_RETENTION_DAYS for webhook "
            "deliveries, QUAI_SHOP_LOG_RETENTION_DAYS for shop deliveries and calls)",
            unit="rows",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        purge_options_check(options)
        days = options["days"]
        webhook_days = settings.QUAI_WEBHOOK_LOG_RETENTION_DAYS if days is None else days
        shop_days = settings.QUAI_SHOP_LOG_RETENTION_DAYS if days is None else days
        dry_run = options["dry_run"]
        verb = "would purge" if dry_run else "purged"

        def progress(result: LogsPurgeResult) -> None:
            self.stdout.write(
                f"  chunk {result.chunks}: {verb} {result.deliveries:,} webhook deliveries, {result.attempts:,} "
                f"attempts, {result.inbound:,} shop deliveries, {result.calls:,} shop calls so far"
            )

        result = integration_logs_purge(
            days=webhook_days, shop_days=shop_days, chunk=options["chunk"], dry_run=dry_run, progress=progress
        )
        if result.skipped:
            self.stdout.write(f"Nothing purged: {result.skipped}.")
            return
        summary = (
            f"{'Dry run: would purge' if dry_run else 'Purged'} {result.deliveries:,} webhook deliveries and "
            f"{result.attempts:,} attempts finished before {_utc(result.webhook_cutoff)} ({webhook_days} days kept), "
            f"{result.inbound:,} shop deliveries and {result.calls:,} shop calls before {_utc(result.shop_cutoff)} "
            f"({shop_days} days kept; shop deliveries at least {INBOUND_DEDUPE_DAYS}) in {result.chunks} chunks."
        )
        self.stdout.write(self.style.SUCCESS(summary))
