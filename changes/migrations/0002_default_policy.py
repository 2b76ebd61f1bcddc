from django.db import migrations

from changes import defaults


def seed(apps, schema_editor):
    defaults.seed(apps)


def unseed(apps, schema_editor):
    defaults.unseed(apps)


class Migration(migrations.Migration):
    dependencies = [("changes", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
