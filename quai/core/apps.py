from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "quai.core"
    label = "core"
    verbose_name = "Quai core"
