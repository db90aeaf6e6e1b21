from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InboundConfig(AppConfig):
    name = "quai.inbound"
    label = "inbound"
    verbose_name = _("Inbound")

    def ready(self) -> None:
        from quai.core.events import subscribe
        from quai.inbound import handlers, selectors
        from quai.inventory.events import StockChanged
        from quai.inventory.services import register_incoming_source

        # Open ASN lines are the incoming stock that availability shows beside what is on hand.
        register_incoming_source(selectors.incoming_stock)
        # Stock leaving a pick face may take it below its min: check it (idempotent: one open task per face).
        # Unrecorded (no HandledEvent row): a check of the faces' stock as it is now, under the unique open task per
        # face, so a second run on the same event opens nothing the first did not (test_replenishment_unrecorded).
        subscribe(
            StockChanged.name,
            "inbound.replenishment_check",
            handlers.replenishment_on_stock_changed,
            batch=handlers.replenishment_on_stock_changed_many,  # one read of the touched faces per relay batch
            recorded=False,
        )
