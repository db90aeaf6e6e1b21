"""HTTP API of analytics (mounted under /api/v1/analytics)."""

from ninja import Router

router = Router(tags=["analytics"])
