"""Customer service HTTP API."""

from ninja import Router

router = Router(tags=["service"])
