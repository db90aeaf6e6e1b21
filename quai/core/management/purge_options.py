"""The arguments every purge command takes (``outbox_purge``, ``integration_logs_purge``): ``--days``, ``--dry-run``
and ``--chunk``, with the same checks, so the two commands answer a bad value with the same sentence."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from quai.core.retention import PURGE_CHUNK, PURGE_CHUNK_SQLITE


def purge_arguments(parser: CommandParser, *, days_help: str, unit: str) -> None:
    """``--days`` (``days_help`` says its default), ``--dry-run``, ``--chunk`` (``unit``: what a chunk counts)."""
    parser.add_argument("--days", type=int, default=None, help=days_help)
    parser.add_argument("--dry-run", action="store_true", help="count what would be deleted; delete nothing")
    parser.add_argument(
        "--chunk",
        type=int,
        default=None,
        help=f"{unit} a transaction (default {PURGE_CHUNK}, on SQLite {PURGE_CHUNK_SQLITE})",
    )


def purge_options_check(options: dict[str, Any]) -> None:
    """Refuse a negative ``--days`` or a chunk of no rows before anything is read."""
    if options["days"] is not None and options["days"] < 0:
        raise CommandError("--days must be 0 (keep everything) or more")
    if options["chunk"] is not None and options["chunk"] <= 0:
        raise CommandError("--chunk must be positive")
