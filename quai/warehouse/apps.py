from django.apps import AppConfig


class WarehouseConfig(AppConfig):
    name = "quai.warehouse"
    label = "warehouse"
