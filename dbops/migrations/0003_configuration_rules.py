from django.db import migrations


def seed(apps, schema_editor):
    from dbops.configuration import defaults

    defaults.seed(apps)


class Migration(migrations.Migration):
    dependencies = [("dbops", "0002_configuration")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
