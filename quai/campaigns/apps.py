from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "quai.campaigns"
    label = "campaigns"
    verbose_name = _("Event sales")

    def ready(self) -> None:
        from quai.campaigns import events  # noqa: F401  (registers the campaign events)
