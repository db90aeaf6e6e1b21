from collections.abc import Iterable

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _sync_roles(sender, **kwargs):
    # Roles are data derived from code (ROLE_PERMISSIONS), refreshed after every migrate. post_migrate is sent
    # once per app that has models, and each app's permissions are created on its own signal: wait for the last one.
    from django.apps import apps

    from quai.tenants.services import staff_roles_sync

    with_models = [config for config in apps.get_app_configs() if config.models_module is not None]
    if sender.label == with_models[-1].label:
        staff_roles_sync()


def _merchant_labels(ids: Iterable[int]) -> dict[int, str]:
    # The back office's outbox (core, which imports no app) names merchants through this: one query per page.
    from quai.tenants.models import Merchant

    return dict(Merchant.objects.filter(pk__in=list(ids)).values_list("pk", "name"))


class TenantsConfig(AppConfig):
    name = "quai.tenants"
    label = "tenants"
    verbose_name = _("Merchants and users")

    def ready(self) -> None:
        post_migrate.connect(_sync_roles, dispatch_uid="quai.tenants.sync_roles")

        from quai.core.admin import merchant_labels_register

        merchant_labels_register(_merchant_labels)
