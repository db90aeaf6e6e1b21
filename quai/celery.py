"""Celery application. With REDIS_URL unset (embedded mode) tasks run eagerly in the caller's process."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quai.settings")
app = Celery("quai")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
