"""Runs, run items, Celery tasks and the default schedule."""
