from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

#: The shipping app's events the promise follows, subscribed by name: shipping sits above promise, so promise never
#: imports it. Payloads: ``shipment.shipped`` (order_id, shipped_at), ``shipment.tracking_event`` (order_id, status,
#: occurred_at, estimated_delivery), ``shipment.delivered`` (order_id, delivered_at).
SHIPMENT_SHIPPED = "shipment.shipped"
SHIPMENT_TRACKING_EVENT = "shipment.tracking_event"
SHIPMENT_DELIVERED = "shipment.delivered"


class PromiseConfig(AppConfig):
    name = "quai.promise"
    label = "promise"
    verbose_name = _("Delivery promise")

    def ready(self) -> None:
        from quai.celery import app as celery_app
        from quai.core.events import subscribe
        from quai.orders.events import OrderReceived, OrderStatusChanged
        from quai.promise import (
            events,  # noqa: F401  (registers the promise events)
            services,
        )

        subscribe(
            OrderReceived.name, "promise.record_on_order", services.on_order_received, batch=services.on_orders_received
        )
        # Recorded (its HandledEvent row is what keeps it to once): it appends each step's lines to the backlog, so a
        # second run on the same event would count them twice.
        subscribe(
            OrderStatusChanged.name,
            "promise.backlog_refresh",
            services.on_order_changed,
            batch=services.on_orders_changed,
        )
        # A truck's manifest ships its orders together, a carrier's day delivers them together: the batch forms read
        # the records (and lanes) of a relay batch once and write each once.
        subscribe(
            SHIPMENT_SHIPPED, "promise.shipped", services.on_shipment_shipped, batch=services.on_shipments_shipped
        )
        # Recorded: a second run right after the first changes nothing, but one after a later estimate of the same
        # order was applied would bring the older estimate back and tell the merchant (PromiseReforecast) again.
        subscribe(SHIPMENT_TRACKING_EVENT, "promise.tracking", services.on_shipment_tracking_event)
        subscribe(
            SHIPMENT_DELIVERED,
            "promise.delivered",
            services.on_shipment_delivered,
            batch=services.on_shipments_delivered,
        )
        # The watch runs beside the other sweeps (settings' CELERY_BEAT_SCHEDULE belongs to no app; each app adds
        # its own entry where it is defined).
        celery_app.conf.beat_schedule.setdefault(
            "promise-watch", {"task": "quai.promise.tasks.promise_watch", "schedule": 60.0}
        )
