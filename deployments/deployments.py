"""All deployments, as data: which flow, its parameters, schedule and concurrency.

Served by one long-running process (``narrate serve``, or ``python -m deployments.deployments``): no
work pool is needed on one machine. Each deployment runs one flow run at a time (more wait their
turn), and every render also takes its endpoint's render slot, so a scheduled and a manual render on
one endpoint run one after the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prefect import Flow
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.schedules import Cron, Schedule

from flows.render_narration import render_narration
from flows.retry_failed_segments import retry_failed_segments
from narrate.settings import Settings, get_settings


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    flow: Flow[..., Any]
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)
    schedules: list[Schedule] = field(default_factory=list)
    concurrency_limit: int = 1
    asked_at_run: tuple[str, ...] = ()  # required parameters the person starting a run supplies


def deployments(settings: Settings) -> list[DeploymentSpec]:
    return [
        DeploymentSpec(
            name="weekly-render",
            flow=render_narration,
            description=(
                "Render the weekly script on schedule. Unchanged segments come from the cache: a week "
                "with no script change synthesises nothing and never wakes the endpoint."
            ),
            parameters={"script": settings.weekly_script, "out_dir": settings.weekly_out_dir},
            schedules=[Cron(settings.weekly_cron, timezone=settings.schedule_timezone)],
        ),
        DeploymentSpec(
            name="render",
            flow=render_narration,
            description="Render a narration script on demand (Prefect UI: Run > Custom run).",
            parameters={"script": "examples/demo.yaml"},
        ),
        DeploymentSpec(
            name="retry-failed-segments",
            flow=retry_failed_segments,
            description="Re-synthesise the failed or missing segments of a render and re-assemble it.",
            asked_at_run=("manifest",),
        ),
    ]


DEPLOYMENTS = deployments(get_settings())


def to_runner_deployments(specs: list[DeploymentSpec]) -> list[Any]:
    return [
        spec.flow.to_deployment(
            name=spec.name,
            description=spec.description,
            parameters=spec.parameters,
            schedules=spec.schedules,
            concurrency_limit=ConcurrencyLimitConfig(
                limit=spec.concurrency_limit, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE
            ),
        )
        for spec in specs
    ]


def serve_all() -> None:
    from prefect import serve

    serve(*to_runner_deployments(deployments(get_settings())), pause_on_shutdown=False)


if __name__ == "__main__":
    serve_all()
