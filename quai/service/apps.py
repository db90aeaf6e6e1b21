from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ServiceConfig(AppConfig):
    name = "quai.service"
    label = "service"
    verbose_name = _("Customer service")

    def ready(self) -> None:
        from quai.core.events import subscribe
        from quai.orders.events import OrderReceived
        from quai.orders.services import amend, gdpr  # noqa: F401  (registers order.line_added, order.personal_data_erased…)
        from quai.service import events  # noqa: F401  (registers the service events)
        from quai.service.services import on_order_received

        # Every new order finds (or makes) its shopper's customer record.
        subscribe(OrderReceived.name, "service.customer_link", on_order_received)
