from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LaborConfig(AppConfig):
    name = "quai.labor"
    label = "labor"
    verbose_name = _("Labour")

    def ready(self) -> None:
        from quai.core.events import subscribe
        from quai.labor import services

        # By name: fulfilment and packing stand above labour, which never imports them.
        # The batch forms read a relay batch's operators and locations once and insert its entries at once: a pack
        # scan is one event per unit, the relay's most frequent. Unrecorded (no HandledEvent row): an entry's event
        # id is unique and a second insert of it is skipped, so a second run writes nothing
        # (test_productivity_unrecorded).
        subscribe(
            services.PICK_CONFIRMED,
            "labor.productivity_pick",
            services.on_pick_confirmed,
            batch=services.on_picks_confirmed,
            recorded=False,
        )
        subscribe(
            services.PACK_SCAN_RECORDED,
            "labor.productivity_pack",
            services.on_pack_scan,
            batch=services.on_pack_scans,
            recorded=False,
        )
