"""The autoscaling rules as the local endpoint applies them, tick by tick, without a clock or AWS."""

from __future__ import annotations

from typing import Any

from narrate.aws.local.autoscaling import AutoscalingRules, Load, ScalingMemory, desired_capacity

TARGET = {"ResourceId": "endpoint/e/variant/AllTraffic", "MinCapacity": 0, "MaxCapacity": 2}
TRACKING = {
    "PolicyType": "TargetTrackingScaling",
    "ResourceId": TARGET["ResourceId"],
    "TargetTrackingScalingPolicyConfiguration": {
        "TargetValue": 2,
        "ScaleInCooldown": 300,
        "ScaleOutCooldown": 60,
    },
}
STEP = {
    "PolicyType": "StepScaling",
    "PolicyARN": "arn:step",
    "ResourceId": TARGET["ResourceId"],
    "StepScalingPolicyConfiguration": {"Cooldown": 300, "StepAdjustments": [{"ScalingAdjustment": 1}]},
}
ALARM = {"AlarmName": "e-HasBacklogWithoutCapacity", "MetricName": "HasBacklogWithoutCapacity", "Period": 60,
         "EvaluationPeriods": 2, "DatapointsToAlarm": 2, "AlarmActions": ["arn:step"]}  # fmt: skip


def run(rules: AutoscalingRules, loads: list[tuple[float, int, int, int]]) -> list[int]:
    """Desired counts at each (time, desired, in service, backlog) tick, the memory carried along."""
    memory, out = ScalingMemory(), []
    for now, desired, in_service, backlog in loads:
        out.append(desired_capacity(rules, memory, Load(desired, in_service, backlog, now), 1.0))
    return out


def rules(*policies: dict[str, Any]) -> AutoscalingRules:
    return AutoscalingRules(TARGET, list(policies), [ALARM])


def test_target_tracking_alone_never_wakes_an_endpoint_at_zero() -> None:
    assert run(rules(TRACKING), [(t, 0, 0, 1) for t in (0, 60, 600, 6000)]) == [0, 0, 0, 0]


def test_the_backlog_alarm_adds_an_instance_after_two_periods() -> None:
    assert run(rules(TRACKING, STEP), [(0, 0, 0, 1), (119, 0, 0, 1), (120, 0, 0, 1)]) == [0, 0, 1]


def test_scale_out_from_a_running_instance_and_in_after_the_cooldown() -> None:
    assert run(rules(TRACKING), [(0, 1, 1, 5), (30, 2, 1, 5)]) == [2, 2]  # out; then its 60 s cooldown
    assert run(rules(TRACKING), [(0, 1, 1, 0), (299, 1, 1, 0), (300, 1, 1, 0)]) == [1, 1, 0]


def test_the_bounds_hold_and_no_target_changes_nothing() -> None:
    pinned = AutoscalingRules(TARGET | {"MinCapacity": 1}, [TRACKING], [ALARM])
    assert run(pinned, [(0, 1, 1, 0), (1000, 1, 1, 0)]) == [1, 1]
    assert run(AutoscalingRules(None, [], []), [(0, 3, 0, 9)]) == [3]
