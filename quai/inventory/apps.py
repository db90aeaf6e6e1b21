from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InventoryConfig(AppConfig):
    name = "quai.inventory"
    label = "inventory"
    verbose_name = _("Stock")

    def ready(self) -> None:
        from quai.inventory.services import zone_close_check
        from quai.warehouse.services import register_zone_close_check

        register_zone_close_check("inventory.stock", zone_close_check)
