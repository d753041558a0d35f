"""``narrate deploy --dry-run``: the deploy run against clients that call nothing and answer as a fresh
account would (nothing exists yet; the execution role does unless ``--create-role``), so the calls
printed are exactly the ones the deploy code makes, in order, with their names, image and tags."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from narrate.aws.clients import AwsClients

SHOWN_ARGUMENTS = (
    "Bucket", "Key", "ModelName", "EndpointConfigName", "EndpointName", "RoleName", "PolicyName",
    "ResourceId", "MinCapacity", "MaxCapacity", "AlarmName", "ServiceCode",
)  # fmt: skip


@dataclass
class FreshAccount:
    """What exists so far in the dry run, and every call made."""

    role_exists: bool
    quota: tuple[str, int] = (
        "",
        0,
    )  # the quota the deploy checks, answered as enough: the dry run shows the check
    created: set[str] = field(default_factory=set)
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def clients(self, region: str) -> AwsClients:
        return AwsClients(region, make=lambda service, config=None: DryRunClient(service, self))

    def lines(self) -> list[str]:
        return [describe_call(service, operation, kwargs) for service, operation, kwargs in self.calls]


def _missing(operation: str, message: str, code: str = "ValidationException") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class DryRunClient:
    def __init__(self, service: str, account: FreshAccount) -> None:
        self.service, self.account = service, account
        self.meta = type("Meta", (), {"endpoint_url": f"https://{service}.amazonaws.com"})()

    def get_paginator(self, operation: str) -> Any:
        client = self

        class Pages:
            def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
                yield getattr(client, operation)(**kwargs)

        return Pages()

    def __getattr__(self, operation: str) -> Any:
        def call(**kwargs: Any) -> Any:
            self.account.calls.append((self.service, operation, kwargs))
            return self._answer(operation, kwargs)

        return call

    def _answer(self, operation: str, kwargs: dict[str, Any]) -> Any:
        created = self.account.created
        if operation == "list_service_quotas":
            name, needed = self.account.quota
            return {"Quotas": [{"QuotaName": name, "QuotaCode": "<code>", "Value": needed}]}
        if operation == "get_role":
            if not self.account.role_exists:
                raise _missing("GetRole", "The role cannot be found.", "NoSuchEntity")
            trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}}]}
            return {"Role": {"AssumeRolePolicyDocument": trust}}
        if operation == "list_objects_v2" and "bucket" not in created:
            raise _missing("ListObjectsV2", "The specified bucket does not exist", "NoSuchBucket")
        if operation.startswith("create_"):
            created.add(operation.removeprefix("create_"))
        if operation in {"describe_model", "describe_endpoint_config"}:
            if operation.removeprefix("describe_") not in created:
                raise _missing(operation, "Could not find it.")
            return {}
        if operation == "describe_endpoint":
            if "endpoint" not in created:
                raise _missing("DescribeEndpoint", "Could not find endpoint.")
            config = next(
                k["EndpointConfigName"] for _, op, k in self.account.calls if op == "create_endpoint"
            )
            variant = {"CurrentInstanceCount": 1, "DesiredInstanceCount": 1}
            return {"EndpointStatus": "InService", "EndpointConfigName": config,
                    "ProductionVariants": [variant]}  # fmt: skip
        if operation == "describe_scalable_targets":
            return {"ScalableTargets": []}
        if operation == "describe_scaling_policies":
            return {"ScalingPolicies": []}
        if operation == "put_scaling_policy":
            return {"PolicyARN": f"arn:aws:autoscaling:dry-run:{kwargs['PolicyName']}"}
        return {}


def describe_call(service: str, operation: str, kwargs: dict[str, Any]) -> str:
    shown = [f"{name}={kwargs[name]}" for name in SHOWN_ARGUMENTS if name in kwargs]
    container = kwargs.get("PrimaryContainer")
    if container:
        shown.append(f"Image={container['Image']}")
    variants = kwargs.get("ProductionVariants")
    if variants:
        shown.append(f"InstanceType={variants[0]['InstanceType']}")
    tags = kwargs.get("Tags") or kwargs.get("Tagging", {}).get("TagSet")
    if tags:
        pairs = tags.items() if isinstance(tags, dict) else ((t["Key"], t["Value"]) for t in tags)
        shown.append("Tags=" + ",".join(f"{k}={v}" for k, v in pairs))
    name = "".join(part.title() for part in operation.split("_"))
    return f"{service} {name} " + " ".join(shown)
