"""Endpoint lifecycle tasks: ensure it exists, wake it, scale it down. The endpoint is named, not
passed, so every task run resolves the same process-wide instance; ``holder`` names the render."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from narrate.endpoints import Usage, get_endpoint
from narrate.log import run_logger


@task(name="ensure-endpoint", cache_policy=NO_CACHE)
def ensure_endpoint(backend: str, holder: str) -> dict[str, Any]:
    return get_endpoint(backend).ensure(holder)


@task(name="wake-endpoint", cache_policy=NO_CACHE)
def wake_endpoint(backend: str, holder: str, deadline_seconds: float) -> None:
    get_endpoint(backend).wake(deadline_seconds, holder)


@task(name="scale-down", cache_policy=NO_CACHE)
def scale_down(backend: str, holder: str) -> Usage:
    usage = get_endpoint(backend).scale_down(holder)
    run_logger().info(
        "endpoint %s %s: %.1f GPU-seconds held by this render, $%.4f",
        backend, "released" if usage.released else "left up for another render",
        usage.gpu_seconds, usage.cost_usd,
    )  # fmt: skip
    return usage
