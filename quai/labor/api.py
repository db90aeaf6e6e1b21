"""Labour HTTP API."""

from ninja import Router

router = Router(tags=["labor"])
