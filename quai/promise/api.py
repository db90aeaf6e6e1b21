"""Delivery promise HTTP API."""

from ninja import Router

router = Router(tags=["promise"])
