from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "quai.demo"
    label = "demo"
    verbose_name = "Demo data"
