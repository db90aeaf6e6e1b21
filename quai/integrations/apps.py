from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

STOCK_EVENTS = (
    "inventory.stock_changed",
    "inventory.reservation_made",
    "inventory.reservation_released",
    "inventory.reservation_consumed",
)


class IntegrationsConfig(AppConfig):
    name = "quai.integrations"
    label = "integrations"
    verbose_name = _("Integrations")

    def ready(self) -> None:
        from quai.celery import SHOP_PUSH_QUEUE
        from quai.core.events import subscribe
        from quai.core.outbox import relay_first
        from quai.integrations.connectors import load_adapters
        from quai.integrations.services import on_shipment_shipped, on_sku_created, on_stock_event, webhook_fan_out
        from quai.integrations.services.deliveries import (
            FIRST_PREFIXES,
            webhook_fan_out_many,
            webhook_fan_out_rest,
            webhook_fan_out_rest_many,
        )
        from quai.integrations.services.shipments import on_shipments_shipped
        from quai.integrations.services.stock_out import on_stock_events

        load_adapters()

        # Every event may interest some merchant's subscription; the handler only writes delivery rows (inside the
        # relay's transaction) and nudges the delivery task after the commit: no HTTP in the relay. Its batch form
        # reads the subscriptions once per relay batch, not once per event. Unrecorded (no HandledEvent row): its
        # only writes are deliveries under their unique (subscription, event), which a second run does not write
        # again, and in a sale it ran on every event with no subscription wanting any (149,615 rows in a
        # 5,000-order day, 42 % of all the relay wrote). A retried event is fanned out again; a subscription made
        # since is still matched only on events that happened after it.
        subscribe(
            "*",
            "integrations.webhook_fan_out",
            webhook_fan_out_rest,
            batch=webhook_fan_out_rest_many,
            recorded=False,
        )
        # ... but the stock's and the catalogue's events (a shop's availability), fanned out by a handler relayed
        # first, so a sale's backlog of order events does not hold their webhooks (deliveries.py, point 5).
        # Unrecorded for the same reason as the ``*`` one: on the events the shops' stock mark (below, recorded)
        # runs on too, its row is the priority pass's mark and the fan-out writes none (137,000 rows of a
        # 20,000-order day); on the others (a reservation allocated, the catalogue's) it is their only handler
        # relayed first and still writes its row (``quai.core.outbox.recorded_keys``).
        first_fan_outs = [f"integrations.webhook_fan_out.{prefix.rstrip('.')}" for prefix in FIRST_PREFIXES]
        for prefix, key in zip(FIRST_PREFIXES, first_fan_outs, strict=True):
            subscribe(f"{prefix}*", key, webhook_fan_out, batch=webhook_fan_out_many, recorded=False)
        # Shops: every change of what a SKU may sell marks it for a push to the merchant's shops (pushed by a task
        # on the shop_push queue after the relay's commit); the batch form reads the shops once per relay batch and
        # marks each SKU once. A new SKU releases the shop orders held for it.
        for name in STOCK_EVENTS:
            subscribe(name, f"integrations.shop_stock.{name}", on_stock_event, batch=on_stock_events)
        # ... relayed first: a shop must show a change within a second, however many order events a sale put ahead
        # of it in the outbox. The marks are per-SKU counters (the order they are bumped in does not matter), so the
        # outbox's priority pass may run them before older events; its task goes to shop_push, whose processes are
        # not the relay's (busy with the sale's backlog) and which takes the push it asks for next.
        relay_first(
            *(f"integrations.shop_stock.{name}" for name in STOCK_EVENTS),
            *first_fan_outs,
            queue=SHOP_PUSH_QUEUE,
        )
        subscribe("catalog.sku_created", "integrations.shop_orders_held", on_sku_created)
        # A shipped order is told to the shop it came from, with its tracking (a retried call, once per parcels); the
        # batch form finds which of a relay batch's orders came from a shop in one read.
        subscribe("shipment.shipped", "integrations.shop_fulfilment", on_shipment_shipped, batch=on_shipments_shipped)
