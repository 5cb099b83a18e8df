from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_account_name_search_index"),
        ("inventory", "0001_instances_credentials_tags"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="account",
            name="accounts_account_identity_unique",
        ),
        migrations.RemoveConstraint(
            model_name="account",
            name="accounts_account_kind_valid",
        ),
        migrations.RemoveConstraint(
            model_name="accountchange",
            name="accounts_accountchange_type_valid",
        ),
        migrations.AddField(
            model_name="privilegesnapshot",
            name="can_escalate",
            field=models.BooleanField(
                db_index=True,
                default=False,
                help_text="Can gain privileges it does not hold (grant tables, CREATEROLE, …).",
                verbose_name="can escalate",
            ),
        ),
        migrations.AddField(
            model_name="privilegesnapshot",
            name="effective_fingerprint",
            field=models.CharField(
                blank=True,
                help_text="SHA-256 of what the account can effectively do; empty until computed.",
                max_length=64,
                verbose_name="effective fingerprint",
            ),
        ),
        migrations.AddField(
            model_name="privilegesnapshot",
            name="format",
            # Snapshots written before this migration are in the first canonical format:
            # the first sync after the upgrade compares them format-aware.
            field=models.PositiveSmallIntegerField(
                default=1,
                help_text="Version of the canonical form the privileges were written in.",
                verbose_name="format",
            ),
        ),
        migrations.AlterField(
            model_name="privilegesnapshot",
            name="format",
            field=models.PositiveSmallIntegerField(
                default=2,
                help_text="Version of the canonical form the privileges were written in.",
                verbose_name="format",
            ),
        ),
        migrations.AddField(
            model_name="privilegesnapshot",
            name="is_anonymous",
            field=models.BooleanField(default=False, verbose_name="anonymous"),
        ),
        migrations.AddField(
            model_name="privilegesnapshot",
            name="no_password",
            field=models.BooleanField(default=False, verbose_name="no password"),
        ),
        migrations.AlterField(
            model_name="account",
            name="kind",
            field=models.CharField(
                choices=[
                    ("user", "User"),
                    ("role", "Role"),
                    ("login", "Login"),
                    ("group", "Group"),
                    ("public", "PUBLIC"),
                ],
                max_length=10,
                verbose_name="kind",
            ),
        ),
        migrations.AlterField(
            model_name="account",
            name="name",
            field=models.CharField(
                blank=True,
                help_text="User, role or login name; empty for a MySQL/MariaDB anonymous account.",
                max_length=255,
                verbose_name="name",
            ),
        ),
        migrations.AlterField(
            model_name="accountchange",
            name="change_type",
            field=models.CharField(
                choices=[
                    ("created", "Created"),
                    ("privileges_changed", "Privileges changed"),
                    ("attributes_changed", "Attributes changed"),
                    ("removed", "Removed"),
                    ("restored", "Restored"),
                    ("effective_changed", "Effective privileges changed"),
                ],
                max_length=20,
                verbose_name="change",
            ),
        ),
        migrations.AlterField(
            model_name="accountchange",
            name="privileged",
            field=models.BooleanField(
                default=False,
                help_text="The account is or became a superuser, grant admin or able to escalate (effective capabilities).",
                verbose_name="privileged",
            ),
        ),
        migrations.AddConstraint(
            model_name="account",
            constraint=models.UniqueConstraint(
                fields=("instance", "kind", "name", "host"), name="accounts_account_identity_unique"
            ),
        ),
        migrations.AddConstraint(
            model_name="account",
            constraint=models.CheckConstraint(
                condition=models.Q(("kind__in", ["user", "role", "login", "group", "public"])),
                name="accounts_account_kind_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="accountchange",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "change_type__in",
                        [
                            "created",
                            "privileges_changed",
                            "attributes_changed",
                            "removed",
                            "restored",
                            "effective_changed",
                        ],
                    )
                ),
                name="accounts_accountchange_type_valid",
            ),
        ),
    ]
