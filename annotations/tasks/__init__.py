"""Celery tasks: short wrappers that take ids and call services (imported for autodiscovery)."""

from annotations.tasks.imports import import_job_run  # noqa: F401
