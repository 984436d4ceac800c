"""API tokens: an optional expiry and a read-only scope."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("annotations", "0007_job_system_constraints"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken", name="expires_at",
            field=models.DateTimeField(blank=True, null=True, help_text="Empty: the token does not expire."),
        ),
        migrations.AddField(
            model_name="apitoken", name="scope",
            field=models.CharField(choices=[("read_write", "Read and write"),
                                            ("read", "Read only (and /v1/moderations)")],
                                   default="read_write", max_length=16),
        ),
    ]
