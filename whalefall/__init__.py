"""WhaleFall: inventory, privileges and capacity of a database estate."""

from whalefall.celery import app as celery_app

__all__ = ["celery_app"]
