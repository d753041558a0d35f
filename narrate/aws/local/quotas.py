"""The embedded AWS's Service Quotas for SageMaker endpoints (moto has none for SageMaker): an account
that has been granted a few instances of each GPU type, which tests lower to 0 to be a new account.
CreateEndpoint beyond the quota is refused with ResourceLimitExceeded, as AWS refuses it."""

from __future__ import annotations

import threading
from typing import Any

GRANTED = 4.0  # instances of each type, unless a test sets another value
LISTED_TYPES = (
    "ml.g4dn.xlarge",
    "ml.g5.xlarge",
    "ml.g5.2xlarge",
    "ml.g6.xlarge",
    "ml.g6.2xlarge",
    "ml.p4d.24xlarge",
)


class LocalQuotas:
    def __init__(self) -> None:
        self._values: dict[str, float] = {}
        self._lock = threading.Lock()

    def set(self, instance_type: str, value: float) -> None:
        with self._lock:
            self._values[instance_type] = value

    def value(self, instance_type: str) -> float:
        with self._lock:
            return self._values.get(instance_type, GRANTED)

    def listing(self) -> list[dict[str, Any]]:
        """ListServiceQuotas' answer for ServiceCode sagemaker."""
        with self._lock:
            types = sorted(set(LISTED_TYPES) | set(self._values))
        return [
            {
                "ServiceCode": "sagemaker",
                "ServiceName": "Amazon SageMaker",
                "QuotaName": f"{name} for endpoint usage",
                "QuotaCode": f"L-LOCAL{index:04d}",
                "Value": self.value(name),
                "Unit": "None",
                "Adjustable": True,
                "GlobalQuota": False,
            }
            for index, name in enumerate(types)
        ]
