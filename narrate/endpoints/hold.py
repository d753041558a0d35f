"""How renders hold a SageMaker endpoint awake, and how a render that dies lets go of it by itself.

Three things keep renders and the instance in step, from the outside in:

- **The render slot** (:mod:`narrate.endpoints.render_slot`): a Prefect global concurrency limit of
  1 per endpoint, so renders of one endpoint, from any deployment, process or machine, run one after
  the other; a render that finds it taken waits. It orders renders; it does not touch AWS.
- **Leases** (here): each render that needs the instance keeps an object
  ``<prefix>/leases/<endpoint>/<holder>.json`` in S3 with an expiry and the instances it asked for.
  A render's scale-down releases the instances only when no other live lease is left, so work that
  overlaps a render without taking its slot (a several-voices render's outer hold around its voices,
  ``narrate endpoint wake``, a render on another machine with another Prefect server) is never cut
  off. The endpoint's MinCapacity is the most instances any live lease asked for: a wake never lowers
  another render's, and a scale-down that leaves others holding lowers it only to theirs (the surplus
  is then target tracking's to scale in once idle; no instance is taken away by narrate).
- **The hold** (here): while any render of this process holds the endpoint, a thread renews its
  lease and pushes back a one-time scheduled action of Application Auto Scaling that forces the
  endpoint to zero at now + ``hold_seconds``, every third of that. A render that dies stops pushing:
  AWS itself releases the instance when the hold runs out, and its lease expires with it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from narrate.aws.s3 import s3_encryption
from narrate.endpoints.sagemaker_setup import DIMENSION, EndpointSpec
from narrate.log import run_logger

RESTORE_AFTER_RELEASE_SECONDS = 120


class EndpointHold:
    """The leases of one endpoint in S3, and this process's renewal of its holds."""

    def __init__(self, s3: Any, autoscaling: Any, spec: EndpointSpec, hold_seconds: float) -> None:
        self.s3, self.autoscaling, self.spec = s3, autoscaling, spec
        self.hold_seconds = hold_seconds
        self._holders: dict[str, int] = {}  # renders of this process holding the endpoint: instances
        self._renewer: threading.Thread | None = None
        self._lock = threading.Lock()

    # --- leases ------------------------------------------------------------------------------

    def write_lease(self, holder: str, instances: int = 1) -> None:
        """From here on no other render's scale-down releases the instances (until the lease expires)."""
        expires = time.time() + self.hold_seconds
        body = {"holder": holder, "expires_at": expires, "since": datetime.now(UTC).isoformat(),
                "instances": instances}  # fmt: skip
        self.s3.put_object(
            Bucket=self.spec.bucket,
            Key=self._lease_prefix + f"{holder}.json",
            Body=json.dumps(body).encode(),
            **s3_encryption(self.spec.kms_key_id),
        )

    def active_leases(self) -> dict[str, int]:
        """Each live lease (its key) and the instances it asked for (1 in a lease without the field)."""
        active = {}
        for key in self._lease_keys():
            try:
                lease = json.loads(self.s3.get_object(Bucket=self.spec.bucket, Key=key)["Body"].read())
            except (ClientError, ValueError):
                continue
            if float(lease.get("expires_at", 0)) > time.time():
                active[key] = int(lease.get("instances", 1))
        return active

    def drop_all_leases(self) -> None:
        """Every render's lease, gone (``narrate endpoint sleep``: release whatever they say)."""
        for key in self._lease_keys():
            self.s3.delete_object(Bucket=self.spec.bucket, Key=key)

    # --- holds -------------------------------------------------------------------------------

    def hold(self, holder: str, instances: int | None = None) -> None:
        """Hold the endpoint for ``holder`` another hold_seconds, renewed every third of that until
        :meth:`let_go`: its lease (with ``instances``; None keeps what it asked before, 1 at first),
        and the release AWS runs by itself if no render renews it."""
        with self._lock:
            instances = instances or self._holders.get(holder, 1)
        self.write_lease(holder, instances)
        self.schedule_release()
        with self._lock:
            self._holders[holder] = instances
            if self._renewer is None:
                self._renewer = threading.Thread(target=self._renew, name="endpoint-hold", daemon=True)
                self._renewer.start()

    def instances_of(self, holder: str) -> int:
        """The instances ``holder`` asked for (1 for a holder of no instances in particular)."""
        with self._lock:
            return self._holders.get(holder, 1)

    def most_wanted(self, asked: Iterable[int]) -> int:
        """The MinCapacity that gives every render what it asked for, within MaxCapacity."""
        return min(max(asked), self.spec.max_instances)

    def let_go(self, holder: str) -> dict[str, int]:
        """Stop holding for ``holder``; the leases of the renders that still need the endpoint, with the
        instances each asked for."""
        with self._lock:
            self._holders.pop(holder, None)
        self.s3.delete_object(Bucket=self.spec.bucket, Key=self._lease_prefix + f"{holder}.json")
        return self.active_leases()

    def schedule_release(self) -> None:
        """If every render holding the endpoint dies, Application Auto Scaling itself forces it to zero
        (MaxCapacity 0) when the hold runs out, then gives the alarm-driven wake its range back."""
        release_at = datetime.now(UTC) + timedelta(seconds=self.hold_seconds)
        for name, at, action in (
            (self._release_action, release_at, {"MinCapacity": 0, "MaxCapacity": 0}),
            (
                self._restore_action,
                release_at + timedelta(seconds=RESTORE_AFTER_RELEASE_SECONDS),
                {"MinCapacity": 0, "MaxCapacity": self.spec.max_instances},
            ),
        ):
            self.autoscaling.put_scheduled_action(
                ServiceNamespace="sagemaker",
                ScheduledActionName=name,
                ResourceId=self.spec.resource_id,
                ScalableDimension=DIMENSION,
                Schedule=f"at({at:%Y-%m-%dT%H:%M:%S})",
                ScalableTargetAction=action,
            )

    def cancel_release(self) -> None:
        for name in (self._release_action, self._restore_action):
            try:
                self.autoscaling.delete_scheduled_action(
                    ServiceNamespace="sagemaker",
                    ScheduledActionName=name,
                    ResourceId=self.spec.resource_id,
                    ScalableDimension=DIMENSION,
                )
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in {"ObjectNotFoundException", "ValidationException"}:
                    raise

    def _renew(self) -> None:
        while True:
            time.sleep(self.hold_seconds / 3)
            with self._lock:
                holders = sorted(self._holders.items())
                if not holders:
                    self._renewer = None
                    return
            try:
                for holder, instances in holders:
                    self.write_lease(holder, instances)
                self.schedule_release()
            except (ClientError, BotoCoreError) as exc:  # the next renewal tries again
                run_logger().warning("could not renew the hold on %s: %s", self.spec.endpoint_name, exc)

    @property
    def _lease_prefix(self) -> str:
        return f"{self.spec.s3_prefix}/leases/{self.spec.endpoint_name}/"

    def _lease_keys(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=self.spec.bucket, Prefix=self._lease_prefix)
        return [item["Key"] for item in listing.get("Contents", [])]

    @property
    def _release_action(self) -> str:
        return f"{self.spec.endpoint_name}-release-if-abandoned"

    @property
    def _restore_action(self) -> str:
        return f"{self.spec.endpoint_name}-restore-wake-range"
