from django.db import migrations

from portal.defaults import seed_roles


def create_roles(apps, schema_editor):
    seed_roles(apps)


class Migration(migrations.Migration):
    dependencies = [("portal", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
