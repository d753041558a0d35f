"""Application Auto Scaling's rules as the local async endpoint applies them.

The rules are read through the public Application Auto Scaling and CloudWatch APIs, once a tick for
every endpoint (a tick must not grow with the number of endpoints a long test session created):
MinCapacity/MaxCapacity bounds; the ``HasBacklogWithoutCapacity`` alarm fires its step policy after
the alarm's evaluation periods; target tracking on ``ApproximateBacklogSizePerInstance`` scales out
only from a running instance (so alone it never wakes an endpoint at zero) and scales in after its
cooldown; one-time ``at(...)`` scheduled actions change a target's range when due. Periods and
cooldowns are multiplied by ``time_scale``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("narrate.aws.local")

VARIANT = "AllTraffic"


def resource_id(endpoint_name: str) -> str:
    return f"endpoint/{endpoint_name}/variant/{VARIANT}"


def at_expression_time(schedule: str) -> datetime | None:
    """The UTC time of a one-time ``at(yyyy-mm-ddThh:mm:ss)`` schedule; None for cron/rate ones."""
    if not (schedule.startswith("at(") and schedule.endswith(")")):
        return None
    return datetime.fromisoformat(schedule[3:-1]).replace(tzinfo=UTC)


@dataclass(frozen=True)
class AutoscalingRules:
    target: dict[str, Any] | None
    policies: list[dict[str, Any]]
    alarms: list[dict[str, Any]]


@dataclass
class ScalingMemory:
    """What the rules remember about one endpoint between ticks."""

    backlog_without_capacity_since: float | None = None
    idle_since: float | None = None
    last_step_scaling: float = -1e9
    last_scale_out: float = -1e9


@dataclass(frozen=True)
class Load:
    """One endpoint at one tick."""

    desired: int
    in_service: int
    backlog: int  # queued + in flight
    now: float


def _all(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items += page[key]
    return items


@dataclass
class RuleBook:
    """Every endpoint's rules, read in one go."""

    autoscaling: Any
    cloudwatch: Any
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    alarms: list[dict[str, Any]] = field(default_factory=list)

    def read(self) -> RuleBook:
        targets = _all(
            self.autoscaling, "describe_scalable_targets", "ScalableTargets", ServiceNamespace="sagemaker"
        )
        policies = _all(
            self.autoscaling, "describe_scaling_policies", "ScalingPolicies", ServiceNamespace="sagemaker"
        )
        self.targets = {t["ResourceId"]: t for t in targets}
        self.policies = {}
        for policy in policies:
            self.policies.setdefault(policy["ResourceId"], []).append(policy)
        self.alarms = _all(self.cloudwatch, "describe_alarms", "MetricAlarms")
        return self

    def rules(self, endpoint_name: str) -> AutoscalingRules:
        target = self.targets.get(resource_id(endpoint_name))
        if target is None:
            return AutoscalingRules(None, [], [])
        return AutoscalingRules(target, self.policies.get(target["ResourceId"], []), self.alarms)


def scalable_target(autoscaling: Any, endpoint_name: str) -> dict[str, Any] | None:
    targets = autoscaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=[resource_id(endpoint_name)]
    )["ScalableTargets"]
    return targets[0] if targets else None


def run_due_scheduled_actions(autoscaling: Any, already_run: set[tuple[str, str]]) -> None:
    """Apply each one-time scheduled action that is due and has not run (``already_run`` keeps
    (name, schedule) pairs), as Application Auto Scaling does."""
    now = datetime.now(UTC)
    actions = _all(
        autoscaling, "describe_scheduled_actions", "ScheduledActions", ServiceNamespace="sagemaker"
    )
    for action in actions:
        due = at_expression_time(action["Schedule"])
        ran = (action["ScheduledActionName"], action["Schedule"])
        if due is None or due > now or ran in already_run:
            continue
        already_run.add(ran)
        targets = autoscaling.describe_scalable_targets(
            ServiceNamespace="sagemaker", ResourceIds=[action["ResourceId"]]
        )["ScalableTargets"]
        if not targets:
            continue
        target = targets[0]
        change = action.get("ScalableTargetAction", {})
        autoscaling.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=action["ResourceId"],
            ScalableDimension=target["ScalableDimension"],
            MinCapacity=int(change.get("MinCapacity", target["MinCapacity"])),
            MaxCapacity=int(change.get("MaxCapacity", target["MaxCapacity"])),
        )
        log.info("scheduled action %s ran: %s", action["ScheduledActionName"], change)


def desired_capacity(rules: AutoscalingRules, memory: ScalingMemory, load: Load, time_scale: float) -> int:
    """The desired instance count the rules give an endpoint at this tick (``load.desired`` when it has
    no scalable target)."""
    if rules.target is None:
        return load.desired
    waiting = load.backlog and load.in_service == 0 and load.desired == 0
    memory.backlog_without_capacity_since = _since(memory.backlog_without_capacity_since, load.now, waiting)
    memory.idle_since = _since(memory.idle_since, load.now, load.backlog == 0)
    desired = load.desired
    for policy in rules.policies:
        now_load = Load(desired, load.in_service, load.backlog, load.now)
        if policy["PolicyType"] == "StepScaling":
            desired = _step_scaling(policy, rules.alarms, memory, now_load, time_scale)
        elif policy["PolicyType"] == "TargetTrackingScaling":
            desired = _target_tracking(policy, memory, now_load, time_scale)
    return max(int(rules.target["MinCapacity"]), min(int(rules.target["MaxCapacity"]), desired))


def _since(since: float | None, now: float, holds: bool) -> float | None:
    """When a condition that holds now began (None when it does not hold)."""
    if not holds:
        return None
    return now if since is None else since


def _step_scaling(
    policy: dict[str, Any], alarms: list[dict[str, Any]], memory: ScalingMemory, load: Load, time_scale: float
) -> int:
    """The HasBacklogWithoutCapacity alarm, after its evaluation periods, fires this policy."""
    since = memory.backlog_without_capacity_since
    if since is None:
        return load.desired
    config = policy["StepScalingPolicyConfiguration"]
    for alarm in alarms:
        if policy["PolicyARN"] not in alarm.get("AlarmActions", []):
            continue
        if alarm.get("MetricName") != "HasBacklogWithoutCapacity":
            continue
        periods = int(alarm.get("DatapointsToAlarm") or alarm["EvaluationPeriods"])
        fires_after = periods * int(alarm["Period"]) * time_scale
        cooldown = int(config.get("Cooldown", 0)) * time_scale
        if load.now - since >= fires_after and load.now - memory.last_step_scaling >= cooldown:
            memory.last_step_scaling = load.now
            adjustment = int(config["StepAdjustments"][0]["ScalingAdjustment"])
            log.info(
                "alarm %s fired: %s instance(s) += %d", alarm["AlarmName"], policy["ResourceId"], adjustment
            )
            return load.desired + adjustment
    return load.desired


def _target_tracking(policy: dict[str, Any], memory: ScalingMemory, load: Load, time_scale: float) -> int:
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    target_value = float(config["TargetValue"])
    out_cooldown = float(config.get("ScaleOutCooldown", 0)) * time_scale
    busy = load.in_service > 0 and load.backlog / load.in_service > target_value
    if busy and load.now - memory.last_scale_out >= out_cooldown:
        memory.last_scale_out = load.now
        return load.desired + 1
    scale_in_after = float(config.get("ScaleInCooldown", 0)) * time_scale
    idle = memory.idle_since is not None and load.now - memory.idle_since >= scale_in_after
    return 0 if load.desired > 0 and idle else load.desired
