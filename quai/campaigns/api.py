"""Event sales HTTP API."""

from ninja import Router

router = Router(tags=["campaigns"])
