"""Statistics of which (status, phase) pairs approvals hold together.

Without them PostgreSQL takes the two as independent: at 100,000 changes, with 6,100
rejected approvals (all before the change) and 76,700 retroactive ones (none rejected),
it expected 1,560 refused ratifications, and for the dashboard's "refused, waiting for a
corrective action" chose to walk every open change in order looking for one: 160 ms
against 0.1 ms. A most-common-values list of the pairs tells it there are none.
"""

from django.db import migrations

FORWARD = "CREATE STATISTICS IF NOT EXISTS approval_status_phase (mcv) ON status, phase FROM changes_approval"
BACKWARD = "DROP STATISTICS IF EXISTS approval_status_phase"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("changes", "0007_approval_queue_order_idx")]
    operations = [migrations.RunPython(forward, backward)]
