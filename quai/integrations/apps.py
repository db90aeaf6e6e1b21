from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "quai.integrations"
    label = "integrations"
    verbose_name = _("Integrations")

    def ready(self) -> None:
        from quai.core.events import subscribe
        from quai.integrations.connectors import load_adapters
        from quai.integrations.services import webhook_fan_out

        load_adapters()

        # Every event may interest some merchant's subscription; the handler only writes delivery rows (inside the
        # relay's transaction) and nudges the delivery task after the commit: no HTTP in the relay.
        subscribe("*", "integrations.webhook_fan_out", webhook_fan_out)
