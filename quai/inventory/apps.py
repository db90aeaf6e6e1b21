from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InventoryConfig(AppConfig):
    name = "quai.inventory"
    label = "inventory"
    verbose_name = _("Stock")

    def ready(self) -> None:
        from quai.inventory.services import stock_counting_sync, zone_close_check
        from quai.warehouse.services import register_zone_change_listener, register_zone_close_check

        register_zone_close_check("inventory.stock", zone_close_check)
        # A zone opened, re-windowed or re-shaped counts (or stops counting) toward availability at once.
        register_zone_change_listener("inventory.counting", lambda zone: stock_counting_sync(zone=zone))
