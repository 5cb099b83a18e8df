"""Instances, credentials, tags and the engine layer."""
