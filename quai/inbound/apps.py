from django.apps import AppConfig


class InboundConfig(AppConfig):
    name = "quai.inbound"
    label = "inbound"
