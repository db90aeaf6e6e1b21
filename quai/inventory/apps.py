from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "quai.inventory"
    label = "inventory"
