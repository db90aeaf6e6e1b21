from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "quai.catalog"
    label = "catalog"
