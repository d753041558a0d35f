"""The instance quota an endpoint needs: Service Quotas' "<instance type> for endpoint usage" in the
region must cover the endpoint's most instances. A new account has 0 for the GPU types, the first
thing a new user meets; this says so before anything is created, with how to ask for more."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EndpointQuota:
    name: str  # e.g. "ml.g5.xlarge for endpoint usage"
    region: str
    needed: int
    value: float | None  # None: Service Quotas does not list it
    code: str | None

    @property
    def ok(self) -> bool:
        return self.value is not None and self.value >= self.needed

    def describe(self) -> str:
        if self.value is None:
            return f"quota '{self.name}' is not listed by Service Quotas in {self.region}"
        return f"quota '{self.name}' in {self.region} is {self.value:g} (needed: {self.needed})"

    def fix(self) -> str:
        """How to get the quota raised (approval takes hours to days; new accounts start at 0)."""
        code = (
            self.code
            or "<the quota's code, from: aws service-quotas list-service-quotas --service-code sagemaker>"
        )
        return (
            f"request an increase to {self.needed}: aws service-quotas request-service-quota-increase "
            f"--region {self.region} --service-code sagemaker --quota-code {code} "
            f"--desired-value {self.needed} (or the Service Quotas console: Amazon SageMaker > {self.name}); "
            "or lower NARRATE_MAX_INSTANCES, or pick an NARRATE_INSTANCE_TYPE you have quota for"
        )


def endpoint_quota(quotas: Any, instance_type: str, region: str, needed: int) -> EndpointQuota:
    """The applied quota of ``instance_type`` for endpoint usage (ServiceQuotas ListServiceQuotas)."""
    name = f"{instance_type} for endpoint usage"
    for page in quotas.get_paginator("list_service_quotas").paginate(ServiceCode="sagemaker"):
        for quota in page.get("Quotas", []):
            if quota.get("QuotaName") == name:
                return EndpointQuota(name, region, needed, float(quota["Value"]), quota.get("QuotaCode"))
    return EndpointQuota(name, region, needed, None, None)
