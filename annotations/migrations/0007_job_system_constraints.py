"""Job system: drop the round kind and the weak label's round link; per-project number constraints."""

from django.db import migrations, models

ALGORITHMS = [("supervised", "Supervised (baseline)"), ("fixmatch", "FixMatch"), ("freematch", "FreeMatch"),
              ("marginmatch", "MarginMatch"), ("multimatch", "MultiMatch")]


class Migration(migrations.Migration):

    dependencies = [
        ("annotations", "0006_job_system_data"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="weaklabel", name="one_weak_label_per_source_iteration"),
        migrations.RemoveField(model_name="weaklabel", name="training_round"),
        migrations.AddConstraint(
            model_name="weaklabel",
            constraint=models.UniqueConstraint(fields=("item", "source", "job", "iteration"),
                                               name="one_weak_label_per_source_job_iteration", nulls_distinct=False),
        ),
        migrations.RemoveField(model_name="traininground", name="kind"),
        migrations.AlterField(
            model_name="traininground", name="algorithm", field=models.CharField(choices=ALGORITHMS, max_length=32),
        ),
        migrations.AddConstraint(
            model_name="traininground",
            constraint=models.UniqueConstraint(condition=models.Q(("number__gt", 0)), fields=("project", "number"),
                                               name="round_number_per_project"),
        ),
        migrations.AddConstraint(
            model_name="backgroundjob",
            constraint=models.UniqueConstraint(condition=models.Q(("number__gt", 0)),
                                               fields=("project", "kind", "number"),
                                               name="job_number_per_project_kind"),
        ),
        migrations.AddConstraint(
            model_name="backgroundjob",
            constraint=models.UniqueConstraint(condition=models.Q(("kind", "refine"),
                                                                  ("status__in", ["queued", "running"])),
                                               fields=("project",), name="one_active_refinement_per_project"),
        ),
        migrations.AddConstraint(
            model_name="modelversion",
            constraint=models.UniqueConstraint(condition=models.Q(("number__gt", 0)), fields=("project", "number"),
                                               name="model_number_per_project"),
        ),
    ]
