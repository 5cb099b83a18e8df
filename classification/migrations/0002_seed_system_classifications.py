"""Seed the six system classifications (SPEC §6); existing rows are left as they are."""

from django.db import migrations

# code, name, risk level, priority, colour, description
SYSTEM = [
    ("super", "Super", 1, 600, "#b91c1c", "Superusers and accounts that can grant anything."),
    (
        "highly_privileged",
        "Highly privileged",
        2,
        500,
        "#ea580c",
        "Server-wide administration short of superuser.",
    ),
    ("sensitive", "Sensitive", 3, 400, "#d97706", "Access to sensitive data or objects."),
    ("medium", "Medium", 4, 300, "#ca8a04", "Broad write access to application data."),
    ("low", "Low", 5, 200, "#2563eb", "Read access or narrowly scoped writes."),
    ("public", "Public", 6, 100, "#6b7280", "Connect-only or public access."),
]


def seed(apps, schema_editor):
    Classification = apps.get_model("classification", "Classification")
    for code, name, risk, priority, colour, description in SYSTEM:
        Classification.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "risk_level": risk,
                "priority": priority,
                "colour": colour,
                "description": description,
                "is_system": True,
            },
        )


def unseed(apps, schema_editor):
    Classification = apps.get_model("classification", "Classification")
    Classification.objects.filter(code__in=[row[0] for row in SYSTEM], is_system=True).delete()


class Migration(migrations.Migration):
    dependencies = [("classification", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
