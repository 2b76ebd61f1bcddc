from django.db import migrations

from changes import defaults


def seed(apps, schema_editor):
    # get_or_create: only the rules for the procedure-impact and downtime factors are new.
    defaults.seed(apps)


class Migration(migrations.Migration):
    dependencies = [("changes", "0003_restructure")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
