"""The boto3 clients narrate calls, in one small object with real defaults (as httpx takes a
transport): made on first use for one region, so tests pass a ``make`` that returns fakes instead of
patching boto3."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config

ClientMaker = Callable[..., Any]  # boto3.client's signature: (service_name, config=...)

# Control-plane and storage calls: botocore retries throttling 3 times itself.
STANDARD_RETRIES = {"mode": "standard", "max_attempts": 3}
# Invocations are retried by the flow with its own back-off and jitter, not by botocore.
NO_RETRIES = {"max_attempts": 1}
# Polly: 3 tries in all; then the segment fails transiently and the flow's next round submits it again.
POLLY_RETRIES = {"mode": "standard", "total_max_attempts": 3}


@dataclass(frozen=True)
class AwsClients:
    region: str
    make: ClientMaker = boto3.client

    def client(self, service: str, retries: dict[str, Any] = STANDARD_RETRIES) -> Any:
        return self.make(service, config=Config(region_name=self.region, retries=retries))

    @cached_property
    def sagemaker(self) -> Any:
        return self.client("sagemaker")

    @cached_property
    def runtime(self) -> Any:
        return self.client("sagemaker-runtime", NO_RETRIES)

    @cached_property
    def s3(self) -> Any:
        return self.client("s3")

    @cached_property
    def autoscaling(self) -> Any:
        return self.client("application-autoscaling")

    @cached_property
    def cloudwatch(self) -> Any:
        return self.client("cloudwatch")

    @cached_property
    def polly(self) -> Any:
        return self.client("polly", POLLY_RETRIES)

    @cached_property
    def iam(self) -> Any:
        return self.client("iam")

    @cached_property
    def sts(self) -> Any:
        return self.client("sts")

    @cached_property
    def quotas(self) -> Any:
        return self.client("service-quotas")
