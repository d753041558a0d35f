"""Every deployment's parameters exist in its flow's signature, with values the flow accepts."""

from __future__ import annotations

import inspect

import pytest

from deployments.deployments import DEPLOYMENTS, DeploymentSpec


@pytest.mark.parametrize("spec", DEPLOYMENTS, ids=lambda s: s.name)
def test_parameters_match_the_flow_signature(spec: DeploymentSpec) -> None:
    signature = inspect.signature(spec.flow.fn)
    unknown = set(spec.parameters) - set(signature.parameters)
    assert not unknown, f"{spec.name}: {unknown} not parameters of {spec.flow.name}"
    required = {n for n, p in signature.parameters.items() if p.default is inspect.Parameter.empty}
    assert required <= set(spec.parameters), (
        f"{spec.name}: missing required {required - set(spec.parameters)}"
    )
    spec.flow.validate_parameters(spec.parameters)


def test_deployment_names_are_unique() -> None:
    names = [spec.name for spec in DEPLOYMENTS]
    assert len(names) == len(set(names))
