"""Prefect flows, one per module, named for what they produce."""
