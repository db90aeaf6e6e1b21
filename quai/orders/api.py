"""Orders HTTP API: intake, reads with their timeline, and the shopper-facing steps (cancel, hold, address)."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["orders"])
