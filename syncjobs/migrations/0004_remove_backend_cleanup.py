"""Delete beat's ``celery.backend_cleanup`` entry: WhaleFall's tasks keep no results, so it
cleaned nothing, and the scheduler no longer installs it (``syncjobs.beat``)."""

from django.db import migrations


def remove_backend_cleanup(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task="celery.backend_cleanup").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("syncjobs", "0003_run_restored_count"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(remove_backend_cleanup, migrations.RunPython.noop)]
