"""Shop platform connectors: one adapter per platform behind one interface (``base.PlatformAdapter``).

Every module of this package other than ``base`` holds one platform's adapter, registered with ``@register``;
``load_adapters`` imports them all (called by the app's ``ready``), so adding a platform is adding a module."""

import importlib
import pkgutil

from quai.integrations.connectors.base import adapter_for, platforms, register


def load_adapters() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base" and not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


__all__ = ["adapter_for", "load_adapters", "platforms", "register"]
