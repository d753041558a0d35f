"""Endpoint lifecycle tasks: ensure it exists, wake it, scale it down; and :func:`hold_endpoint`, which
holds it for a render (or several) around them, woken to the instances :func:`plan_fan_out` gives the
render's work.

The endpoint is named by its kind, not passed, so every task run resolves the same process-wide
instance (:mod:`narrate.endpoints.registry`); ``holder`` names the render.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture

from narrate.check.gate import expected_seconds
from narrate.endpoints import EndpointKind, Usage, get_endpoint
from narrate.endpoints.capacity import Capacity, FanOut, size_fan_out
from narrate.log import run_logger
from narrate.manifest import RenderManifest
from narrate.settings import Settings
from tasks.script import PlannedSegment


@task(name="ensure-endpoint", cache_policy=NO_CACHE)
def ensure_endpoint(endpoint: EndpointKind, holder: str, settings: Settings) -> dict[str, Any]:
    return get_endpoint(endpoint, settings).ensure(holder)


@task(name="wake-endpoint", cache_policy=NO_CACHE)
def wake_endpoint(endpoint: EndpointKind, holder: str, settings: Settings, instances: int = 1) -> None:
    get_endpoint(endpoint, settings).wake(settings.wake_deadline_seconds, holder, instances)


@task(name="scale-down", cache_policy=NO_CACHE)
def scale_down(endpoint: EndpointKind, holder: str, settings: Settings) -> Usage:
    usage = get_endpoint(endpoint, settings).scale_down(holder)
    run_logger().info(
        "endpoint %s %s: %.1f GPU-seconds held by this render (%d instance(s)), %s",
        endpoint, "released" if usage.released else "left up for another render",
        usage.gpu_seconds, usage.instances, usage.cost_text(),
    )  # fmt: skip
    return usage


def plan_fan_out(endpoint: EndpointKind, todo: list[PlannedSegment], settings: Settings) -> FanOut:
    """The instances the segments to synthesise are worth (one where the endpoint has no instances to
    add), and the batch size that gives each of them requests; their speech estimated from their text."""
    speech = sum(expected_seconds(planned.speech) for planned in todo)
    capacity = Capacity.from_settings(settings, fans_out=endpoint is EndpointKind.SAGEMAKER)
    fan_out = size_fan_out(speech, len(todo), capacity)
    if endpoint is EndpointKind.SAGEMAKER:
        run_logger().info("fan-out: %s", fan_out.describe())
    return fan_out


def holder_name() -> str:
    """Who holds the endpoint awake: this flow run (a fresh id outside a run)."""
    from prefect.runtime import flow_run

    return str(flow_run.get_id() or uuid.uuid4())


@dataclass(frozen=True)
class Hold:
    """An endpoint being woken for a render; requests can be staged and submitted meanwhile."""

    waking: PrefectFuture[None]
    manifest: RenderManifest | None

    def awake(self) -> None:
        """Wait for the wake (the stage "wait for wake" of the manifest); raises if it failed."""
        with self.manifest.timed("wait for wake") if self.manifest else nullcontext():
            self.waking.result()


@contextmanager
def hold_endpoint(
    endpoint: EndpointKind,
    holder: str,
    settings: Settings,
    manifest: RenderManifest | None = None,
    instances: int = 1,
) -> Iterator[Hold]:
    """Hold the endpoint for the body: ensure it, wake ``instances`` of it in the background (requests
    queue at the endpoint meanwhile: no time lost), and scale it down at the end, whatever happens
    (every instance at once, unless another render still holds it). With a manifest, its stages and
    the instance time the hold cost are recorded there."""
    waking: PrefectFuture[None] | None = None
    try:
        with manifest.timed("ensure") if manifest else nullcontext():
            ensure_endpoint(endpoint, holder, settings)
        waking = wake_endpoint.submit(endpoint, holder, settings, instances)
        if manifest:
            manifest.held_since, manifest.instances = time.time(), instances
        yield Hold(waking, manifest)
    finally:
        if waking is not None:
            waking.wait()  # a wake still running would raise MinCapacity again after the release
        with manifest.timed("scale down") if manifest else nullcontext():
            usage = scale_down(endpoint, holder, settings)
        if manifest:
            manifest.record_usage(usage)
