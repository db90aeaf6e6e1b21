from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ServiceConfig(AppConfig):
    name = "quai.service"
    label = "service"
    verbose_name = _("Customer service")

    def ready(self) -> None:
        from quai.core.events import subscribe
        from quai.orders.events import OrderCancelled, OrderHeld, OrderReceived
        from quai.orders.services import amend, gdpr  # noqa: F401  (registers order.line_added, order.personal_data_erased…)
        from quai.service import events  # noqa: F401  (registers the service events)
        from quai.service.services import on_order_received
        from quai.service.services.customers import on_orders_received
        from quai.service.services.shop_events import on_order_cancelled, on_order_held

        # Every new order finds (or makes) its shopper's customer record; the batch form reads a relay batch's
        # orders, links and customers once each.
        subscribe(OrderReceived.name, "service.customer_link", on_order_received, batch=on_orders_received)
        # What a shop (or the merchant) did to an order without an agent lands on its tickets.
        subscribe(OrderCancelled.name, "service.order_cancelled_note", on_order_cancelled)
        subscribe(OrderHeld.name, "service.order_held_note", on_order_held)
