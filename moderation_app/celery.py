"""The Celery application; tasks are discovered in installed Django apps."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderation_app.settings")

app = Celery("moderation_app")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
