"""An index for the account name search of the admin (PostgreSQL only).

The admin searches ``^name``: ``UPPER(name::text) LIKE UPPER('prefix%')``. Without an index
on that expression a name that matches few accounts is a scan of the whole table (264 ms
at 10⁶ accounts, 0.04 ms with it). ``text_pattern_ops`` serves LIKE prefixes whatever the
collation. The table is analysed right away: until its expression has statistics, the
planner guesses, and a broad prefix (``user_``) took 15 s instead of 30 ms. SQLite's small
development tables do not need the index, so it is not part of the model state.
"""

from django.db import migrations

CREATE = (
    "CREATE INDEX IF NOT EXISTS accounts_account_name_upper_idx "
    "ON accounts_account (UPPER(name::text) text_pattern_ops)"
)
DROP = "DROP INDEX IF EXISTS accounts_account_name_upper_idx"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)
        schema_editor.execute("ANALYZE accounts_account")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_access_review_permission")]

    operations = [migrations.RunPython(forwards, backwards)]
