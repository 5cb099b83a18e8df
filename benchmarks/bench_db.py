"""What every benchmark starts with: Django pointed at the benchmark database
``whalefall_bench`` on the local PostgreSQL, created and migrated when missing.

Import it before anything that reads Django settings; call :func:`django_ready` first
thing in ``main``.
"""

import os
import sys
from pathlib import Path

import psycopg

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_ENV", "test")
os.environ.setdefault("WHALEFALL_ENV_FILE", "")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/whalefall_bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "whalefall.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def django_ready() -> None:
    """Create ``whalefall_bench`` when missing, set Django up and migrate the database."""
    with psycopg.connect(
        host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        if not conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = 'whalefall_bench'"
        ).fetchone():
            conn.execute("CREATE DATABASE whalefall_bench")

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
