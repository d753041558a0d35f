"""Prefect tasks, one module per concern of the render lifecycle."""
