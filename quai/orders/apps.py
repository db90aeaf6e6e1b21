from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrdersConfig(AppConfig):
    name = "quai.orders"
    label = "orders"
    verbose_name = _("Orders")

    def ready(self) -> None:
        from quai.core.events import subscribe
        from quai.inventory.events import StockChanged
        from quai.orders import events  # noqa: F401  (registers the order events)
        from quai.orders.services.allocation import on_stock_changed, on_stock_changed_many

        # Stock arriving (a receipt, a putaway, a count that found more) goes to the backorders of that SKU; a relay
        # batch of stock changes reads the backorders of all its SKUs at once.
        # Unrecorded (no HandledEvent row): it gives the SKU's free stock as it is now to its backorders, so a second
        # run on the same event finds them served or the stock out and reserves nothing (test_backorders_unrecorded).
        subscribe(
            StockChanged.name,
            "orders.backorders_allocate",
            on_stock_changed,
            batch=on_stock_changed_many,
            recorded=False,
        )
