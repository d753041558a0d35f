"""All deployments, as data: which flow, its default parameters, schedule and concurrency.

Serve them from one long-running process with ``python -m deployments.deployments``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prefect import Flow

from flows.render_narration import render_narration


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    flow: Flow[..., Any]
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)
    concurrency_limit: int | None = 1


DEPLOYMENTS: list[DeploymentSpec] = [
    DeploymentSpec(
        name="render",
        flow=render_narration,
        description="Render a narration script on demand (Prefect UI: Run > Custom run).",
        parameters={"script": "examples/demo.yaml"},
    ),
]


def serve_all() -> None:
    from prefect import serve

    serve(
        *[
            spec.flow.to_deployment(
                name=spec.name,
                description=spec.description,
                parameters=spec.parameters,
                concurrency_limit=spec.concurrency_limit,
            )
            for spec in DEPLOYMENTS
        ],
        pause_on_shutdown=False,
    )


if __name__ == "__main__":
    serve_all()
