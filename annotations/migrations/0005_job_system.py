"""One job system: the fields every job row shares, per-project numbers, refinement jobs.

Schema additions only; 0006 moves the data, 0007 drops what is no longer used and adds
the constraints (kept apart so PostgreSQL never alters a table with pending trigger events).
"""

import django.db.models.deletion
from django.db import migrations, models

JOB_KINDS = [("import", "Import"), ("augment", "Augmentation"), ("adversarial", "Adversarial mining"),
             ("export", "Export"), ("judge", "LLM judge labels"), ("refine", "Label refinement")]


class Migration(migrations.Migration):

    dependencies = [
        ("annotations", "0004_prediction_agreement_types"),
    ]

    operations = [
        migrations.AddField(
            model_name="backgroundjob", name="cancel_requested", field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="backgroundjob", name="claim",
            field=models.CharField(blank=True, default="", editable=False, max_length=32,
                                   help_text="Token of the current claim: a worker that lost it stops writing."),
        ),
        migrations.AddField(
            model_name="backgroundjob", name="number",
            field=models.PositiveIntegerField(default=0, editable=False, help_text="Per project (and kind), from 1."),
        ),
        migrations.AddField(
            model_name="backgroundjob", name="worker",
            field=models.CharField(blank=True, default="", max_length=200,
                                   help_text="Host of the worker that runs it."),
        ),
        migrations.AlterField(
            model_name="backgroundjob", name="kind", field=models.CharField(choices=JOB_KINDS, max_length=16),
        ),
        migrations.AlterField(
            model_name="backgroundjob", name="progress",
            field=models.JSONField(blank=True, default=dict, help_text="phase, done/total (or step/total), eta"),
        ),
        migrations.AddField(
            model_name="traininground", name="claim",
            field=models.CharField(blank=True, default="", editable=False, max_length=32,
                                   help_text="Token of the current claim: a worker that lost it stops writing."),
        ),
        migrations.AddField(
            model_name="traininground", name="number",
            field=models.PositiveIntegerField(default=0, editable=False, help_text="Per project (and kind), from 1."),
        ),
        migrations.AlterField(
            model_name="traininground", name="progress",
            field=models.JSONField(blank=True, default=dict, help_text="phase, done/total (or step/total), eta"),
        ),
        migrations.AlterField(
            model_name="traininground", name="worker",
            field=models.CharField(blank=True, default="", max_length=200,
                                   help_text="Host of the worker that runs it."),
        ),
        migrations.AddField(
            model_name="modelversion", name="number",
            field=models.PositiveIntegerField(default=0, editable=False, help_text="Per project, from 1."),
        ),
        migrations.AddField(
            model_name="weaklabel", name="job",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE,
                                    related_name="weak_labels", to="annotations.backgroundjob",
                                    help_text="The refinement job that wrote a refined label (empty for other "
                                              "sources)."),
        ),
    ]
