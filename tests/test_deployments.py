"""Every deployment against its flow: parameters exist and validate, the schedule fires when it should."""

from __future__ import annotations

import asyncio
import inspect
from datetime import UTC, datetime

import pytest

from deployments.deployments import DEPLOYMENTS, DeploymentSpec, deployments, to_runner_deployments
from narrate.settings import get_settings


@pytest.mark.parametrize("spec", DEPLOYMENTS, ids=lambda s: s.name)
def test_parameters_match_the_flow_signature(spec: DeploymentSpec) -> None:
    signature = inspect.signature(spec.flow.fn)
    unknown = (set(spec.parameters) | set(spec.asked_at_run)) - set(signature.parameters)
    assert not unknown, f"{spec.name}: {unknown} not parameters of {spec.flow.name}"
    required = {n for n, p in signature.parameters.items() if p.default is inspect.Parameter.empty}
    missing = required - set(spec.parameters) - set(spec.asked_at_run)
    assert not missing, f"{spec.name}: missing required {missing}"
    defaults = {
        n: p.default for n, p in signature.parameters.items() if p.default is not inspect.Parameter.empty
    }
    example = dict.fromkeys(spec.asked_at_run, "renders/demo/manifest.json")
    spec.flow.validate_parameters(defaults | spec.parameters | example)


def test_deployment_names_are_unique_and_each_becomes_a_runner_deployment() -> None:
    names = [spec.name for spec in DEPLOYMENTS]
    assert names == ["weekly-render", "render", "retry-failed-segments"]
    runners = to_runner_deployments(DEPLOYMENTS)
    assert [r.name for r in runners] == names
    assert all(r.concurrency_limit == 1 for r in runners)
    schema = runners[1]._parameter_openapi_schema.model_dump()  # what the UI builds its form from
    assert schema["definitions"]["Engine"]["enum"] == [
        "qwen-speaker",
        "qwen-clone",
        "qwen-design",
        "polly",
        "piper",
        "dev",
    ]
    seed = schema["definitions"]["GenerationRequest"]["properties"]["seed"]
    assert (seed["minimum"], seed["maximum"]) == (0, 2**31 - 1)
    assert "s3://" in schema["properties"]["script"]["description"]


def test_the_weekly_schedule_fires_monday_six_in_its_timezone(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.server.schemas.schedules import CronSchedule

    monkeypatch.setenv("NARRATE_SCHEDULE_TIMEZONE", "Europe/London")
    get_settings.cache_clear()
    (weekly,) = [spec for spec in deployments(get_settings()) if spec.name == "weekly-render"]
    (runner,) = [r for r in to_runner_deployments([weekly])]
    schedule = runner.schedules[0].schedule
    assert (schedule.cron, schedule.timezone) == ("0 6 * * 1", "Europe/London")
    server_schedule = CronSchedule(cron=schedule.cron, timezone=schedule.timezone)
    start = datetime(2026, 7, 1, tzinfo=UTC)  # a Wednesday, British Summer Time
    dates = asyncio.run(server_schedule.get_dates(n=2, start=start))
    assert dates[0].astimezone(UTC) == datetime(2026, 7, 6, 5, 0, tzinfo=UTC)  # 06:00 BST = 05:00 UTC
    assert dates[1].astimezone(UTC) == datetime(2026, 7, 13, 5, 0, tzinfo=UTC)
    winter = asyncio.run(server_schedule.get_dates(n=1, start=datetime(2026, 12, 1, tzinfo=UTC)))
    assert winter[0].astimezone(UTC) == datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # GMT in winter
