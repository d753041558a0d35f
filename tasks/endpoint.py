"""Endpoint lifecycle tasks: ensure it exists, wake it, scale it down. The endpoint is named, not
passed, so every task run resolves the same process-wide instance."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from narrate.endpoints import get_endpoint
from narrate.log import run_logger


@task(name="ensure-endpoint", cache_policy=NO_CACHE)
def ensure_endpoint(backend: str) -> dict[str, Any]:
    description = get_endpoint(backend).ensure()
    run_logger().info("endpoint %s ready to wake: %s", backend, description)
    return description


@task(name="wake-endpoint", cache_policy=NO_CACHE)
def wake_endpoint(backend: str, deadline_seconds: float = 900.0) -> None:
    get_endpoint(backend).wake(deadline_seconds)
    run_logger().info("endpoint %s is serving", backend)


@task(name="scale-down", cache_policy=NO_CACHE)
def scale_down(backend: str) -> None:
    get_endpoint(backend).scale_down()
    run_logger().info("endpoint %s scaled down", backend)
