from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AnnotationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "annotations"
    verbose_name = "Umbra annotations"

    def ready(self) -> None:
        from annotations.fts import ensure_sqlite_fts

        post_migrate.connect(ensure_sqlite_fts, sender=self, dispatch_uid="annotations_sqlite_fts")
