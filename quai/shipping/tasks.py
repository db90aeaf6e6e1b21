"""Shipping's periodic work: polling carriers for tracking events."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="quai.shipping.tasks.tracking_poll")
def tracking_poll() -> int:
    from quai.shipping.services import tracking_poll as poll

    return poll()
