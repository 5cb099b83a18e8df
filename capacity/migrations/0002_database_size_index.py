"""An index for the ledger sorted by size, largest first (PostgreSQL only).

The admin orders by ``total_bytes DESC NULLS LAST``; SQLite cannot index NULLS LAST and
its small development tables do not need it, so the index is not part of the model state.
"""

from django.db import migrations

CREATE = (
    "CREATE INDEX IF NOT EXISTS capacity_database_size_idx "
    "ON capacity_database (total_bytes DESC NULLS LAST)"
)
DROP = "DROP INDEX IF EXISTS capacity_database_size_idx"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("capacity", "0001_databases_samples_aggregates")]

    operations = [migrations.RunPython(forwards, backwards)]
