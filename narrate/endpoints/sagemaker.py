"""The SageMaker async endpoint behind the Endpoint interface, with boto3 only.

Wake is immediate (MinCapacity 1), not left to the two-minute backlog alarm. Each render holds a
lease object in S3 while it needs the instance; scale-down releases the instance only when no other
render's lease is left, so two renders on one endpoint never cut each other off.

A render that dies (killed, machine lost) cannot scale down. Its hold runs out instead: while a render
lives it pushes back a scheduled action of Application Auto Scaling that forces the endpoint to zero,
so a dead orchestrator costs at most ``hold_seconds`` of instance time and nothing stays up.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError

from narrate.endpoints import Submission, SynthesisJob, Usage
from narrate.endpoints.sagemaker_setup import (
    DIMENSION,
    FAILED_STATES,
    POLL_CAP_SECONDS,
    VARIANT,
    EndpointSpec,
    created_unless_existing,
    deregister_autoscaling,
    describe_endpoint,
    ensure_bucket,
    ensure_model_and_config,
    failure_message,
    instances_in_service,
    register_autoscaling,
    wait_for_endpoint,
)
from narrate.errors import ConfigError, EndpointError, SegmentRejected, TransientSynthesisError
from narrate.log import run_logger
from narrate.responses import failure_error
from narrate.settings import Settings
from narrate.storage import s3_encryption

TRANSIENT_CODES = {
    "ThrottlingException", "Throttling", "TooManyRequestsException", "ServiceUnavailable",
    "InternalFailure", "InternalServerError", "ModelNotReadyException", "SlowDown", "RequestTimeout",
}  # fmt: skip
RESTORE_AFTER_RELEASE_SECONDS = 120


def split_s3(location: str) -> tuple[str, str]:
    parsed = urlparse(location)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3:// location: {location!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def is_transient_client_error(exc: Exception) -> bool:
    if isinstance(exc, BotoConnectionError | ReadTimeoutError):
        return True
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in TRANSIENT_CODES or status >= 500 or status == 429
    return False


class SageMakerEndpoint:
    name = "sagemaker"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.spec = EndpointSpec.from_settings(settings)
        config = Config(region_name=settings.region, retries={"mode": "standard", "max_attempts": 3})
        self.sagemaker = boto3.client("sagemaker", config=config)
        # invoke errors are retried by the flow with its own back-off and jitter, not by botocore
        runtime_config = Config(region_name=settings.region, retries={"max_attempts": 1})
        self.runtime = boto3.client("sagemaker-runtime", config=runtime_config)
        self.s3 = boto3.client("s3", config=config)
        self.autoscaling = boto3.client("application-autoscaling", config=config)
        self.cloudwatch = boto3.client("cloudwatch", config=config)
        self._woken_at: dict[str, float] = {}
        self._holders: set[str] = set()  # renders of this process holding the endpoint
        self._renewer: threading.Thread | None = None
        self._launched_at: float | None = None  # set when ensure itself brought up an instance
        self._lock = threading.Lock()

    # --- ensure --------------------------------------------------------------------------------

    def ensure(self, holder: str = "") -> dict[str, Any]:
        """Idempotent: describe first, create what is missing, roll out a changed configuration."""
        logger, spec, created = run_logger(), self.spec, []
        if self.settings.create_bucket and ensure_bucket(
            self.s3, self.settings.bucket, self.settings.region, spec.kms_key_id
        ):
            created.append(f"bucket {self.settings.bucket}")
        if holder:  # from here on no other render's scale-down may release the instance
            self._write_lease(holder)
        created += ensure_model_and_config(self.sagemaker, spec)
        description = describe_endpoint(self.sagemaker, spec.endpoint_name)
        if description is None:
            if self._create_endpoint():
                created.append(f"endpoint {spec.endpoint_name}")
            description = wait_for_endpoint(
                self.sagemaker, spec.endpoint_name, self.settings.wake_deadline_seconds
            )
        elif description["EndpointStatus"] in FAILED_STATES:
            if description["EndpointConfigName"] == spec.config_name:
                raise EndpointError(
                    f"{failure_message(spec.endpoint_name, description)}; the configuration is unchanged "
                    "since it failed: fix the cause (or `narrate endpoint down` if it was passing), run again"
                )
            description = self._replace_failed_endpoint(description)
            created.append(f"endpoint {spec.endpoint_name} (replaced the failed one)")
        elif description["EndpointConfigName"] != spec.config_name:
            logger.info("configuration changed: rolling %s out to %s", spec.endpoint_name, spec.config_name)
            wait_for_endpoint(self.sagemaker, spec.endpoint_name, self.settings.wake_deadline_seconds)
            deregister_autoscaling(self.autoscaling, spec)  # AWS requires it before a type change
            self.sagemaker.update_endpoint(
                EndpointName=spec.endpoint_name, EndpointConfigName=spec.config_name
            )
            created.append(f"rollout to {spec.config_name}")
            description = wait_for_endpoint(
                self.sagemaker, spec.endpoint_name, self.settings.wake_deadline_seconds
            )
        register_autoscaling(self.autoscaling, self.cloudwatch, spec)
        if holder:  # an endpoint just created has an instance: it is held (and released) like a woken one
            self._hold(holder)
        variant = description["ProductionVariants"][0]
        state = {
            "endpoint": spec.endpoint_name,
            "config": spec.config_name,
            "status": description["EndpointStatus"],
            "instances": variant.get("CurrentInstanceCount", 0),
            "created": created,
        }
        logger.info("endpoint ensured: %s", state)
        return state

    def _replace_failed_endpoint(self, description: dict[str, Any]) -> dict[str, Any]:
        """A failed endpoint cannot be updated: delete it and create it with the new configuration."""
        name = self.spec.endpoint_name
        run_logger().warning("%s; its configuration changed since, so it is replaced",
                             failure_message(name, description))  # fmt: skip
        deregister_autoscaling(self.autoscaling, self.spec)
        self.sagemaker.delete_endpoint(EndpointName=name)
        deadline = time.monotonic() + self.settings.wake_deadline_seconds
        while describe_endpoint(self.sagemaker, name) is not None:
            if time.monotonic() > deadline:
                raise EndpointError(f"endpoint {name} is still being deleted; run again in a few minutes")
            time.sleep(POLL_CAP_SECONDS)
        self._create_endpoint()
        return wait_for_endpoint(self.sagemaker, name, self.settings.wake_deadline_seconds)

    def _create_endpoint(self) -> bool:
        """Create the endpoint; False when another render created it first (then it is waited for)."""
        if not created_unless_existing(
            self.sagemaker.create_endpoint,
            EndpointName=self.spec.endpoint_name,
            EndpointConfigName=self.spec.config_name,
        ):
            return False
        self._launched_at = time.monotonic()
        run_logger().info("creating endpoint %s (%s)", self.spec.endpoint_name, self.spec.instance_type)
        return True

    # --- wake ----------------------------------------------------------------------------------

    def wake(self, deadline_seconds: float, holder: str) -> None:
        """Raise MinCapacity to 1 now, then wait for an instance in service under the deadline."""
        logger = run_logger()
        with self._lock:
            launched, self._launched_at = self._launched_at, None
            self._woken_at.setdefault(holder, launched or time.monotonic())
        self._set_min_capacity(1)
        self._hold(holder)
        started = time.monotonic()
        description = wait_for_endpoint(
            self.sagemaker,
            self.spec.endpoint_name,
            deadline_seconds,
            ready=lambda d: instances_in_service(d) >= 1 and d["EndpointStatus"] in {"InService", "Updating"},
            timeout_message="endpoint {name} has no instance after {seconds:.0f} s (status {status}); "
            "queued requests stay queued and a later run completes them",
        )
        logger.info("endpoint %s awake: %d instance(s) after %.1f s", self.spec.endpoint_name,
                    instances_in_service(description), time.monotonic() - started)  # fmt: skip

    # --- requests ------------------------------------------------------------------------------

    def stage(self, job: SynthesisJob) -> str:
        key = f"{self.settings.s3_prefix}/requests/{job.request_id}.json"
        try:
            self.s3.put_object(
                Bucket=self.settings.bucket,
                Key=key,
                Body=json.dumps(job.payload).encode(),
                ContentType="application/json",
                **self.encryption(),
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._classify(exc, "upload request") from None
        return f"s3://{self.settings.bucket}/{key}"

    def submit(self, job: SynthesisJob, input_location: str) -> Submission:
        try:
            response = self.runtime.invoke_endpoint_async(
                EndpointName=self.spec.endpoint_name,
                InputLocation=input_location,
                ContentType="application/json",
                Accept="application/json",
                InferenceId=job.request_id,
                InvocationTimeoutSeconds=self.settings.invocation_timeout_seconds,
                RequestTTLSeconds=self.settings.request_ttl_seconds,
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._classify(exc, "invoke") from None
        submission = Submission(
            request_id=job.request_id,
            segment_ids=job.segment_ids,
            output_location=response["OutputLocation"],
            failure_location=response.get("FailureLocation", ""),
        )
        self._remember(submission, job)
        return submission

    def fetch(self, submission: Submission, deadline_seconds: float) -> bytes:
        """Poll the returned output and failure locations with back-off until one exists."""
        deadline = time.monotonic() + deadline_seconds
        delay = 0.1
        while True:
            body = self._read_if_exists(submission.output_location)
            if body is not None:  # forgotten by the caller once the clips are safe in the cache
                return body
            if submission.failure_location:
                failure = self._read_if_exists(submission.failure_location)
                if failure is not None:
                    self.forget(submission)
                    raise failure_error(failure)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransientSynthesisError(
                    f"no output for request {submission.request_id} within {deadline_seconds:.0f} s"
                )
            time.sleep(min(delay * random.uniform(0.8, 1.2), remaining))
            delay = min(delay * 1.5, POLL_CAP_SECONDS)

    def _read_if_exists(self, location: str) -> bytes | None:
        bucket, key = split_s3(location)
        try:
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise self._classify(exc, "read output") from None

    # --- scale down ----------------------------------------------------------------------------

    def scale_down(self, holder: str) -> Usage:
        """Release the instance now (MinCapacity 0, DesiredInstanceCount 0) unless another render
        still holds a lease on it."""
        logger = run_logger()
        with self._lock:
            self._holders.discard(holder)
            woken_at = self._woken_at.pop(holder, None)
        self._delete_lease(holder)
        others = self._active_leases()
        if others:
            logger.info("endpoint %s stays up: %d other render(s) still need it", self.spec.endpoint_name,
                        len(others))  # fmt: skip
            return self._usage(woken_at, released=False)
        description = describe_endpoint(self.sagemaker, self.spec.endpoint_name)
        if description is None:
            return self._usage(woken_at, released=True)
        self._set_min_capacity(0)
        desired = description["ProductionVariants"][0].get("DesiredInstanceCount")
        if desired:
            self._set_desired_count(0)
        self._cancel_release()
        usage = self._usage(woken_at, released=True)
        logger.info("endpoint %s scaled to 0: %.1f GPU-seconds held, $%.4f", self.spec.endpoint_name,
                    usage.gpu_seconds, usage.cost_usd)  # fmt: skip
        return usage

    def status(self) -> dict[str, Any]:
        description = describe_endpoint(self.sagemaker, self.spec.endpoint_name)
        if description is None:
            return {"endpoint": self.spec.endpoint_name, "status": "absent"}
        variant = description["ProductionVariants"][0]
        return {
            "endpoint": self.spec.endpoint_name,
            "status": description["EndpointStatus"],
            "config": description["EndpointConfigName"],
            "current_instances": variant.get("CurrentInstanceCount", 0),
            "desired_instances": variant.get("DesiredInstanceCount", 0),
            "renders_holding_it": len(self._active_leases()),
        }

    def delete(self) -> dict[str, Any]:
        """Remove the endpoint, its autoscaling and alarm (model and configs stay, they cost nothing)."""
        deregister_autoscaling(self.autoscaling, self.spec)
        self.cloudwatch.delete_alarms(AlarmNames=[f"{self.spec.endpoint_name}-HasBacklogWithoutCapacity"])
        if describe_endpoint(self.sagemaker, self.spec.endpoint_name) is not None:
            self.sagemaker.delete_endpoint(EndpointName=self.spec.endpoint_name)
        return {"endpoint": self.spec.endpoint_name, "status": "deleted"}

    def sleep(self) -> None:
        """Release the instance whatever any lease says (the `narrate endpoint sleep` command)."""
        for key in self._lease_keys():
            self.s3.delete_object(Bucket=self.settings.bucket, Key=key)
        self.scale_down("manual")

    def _set_min_capacity(self, minimum: int) -> None:
        self.autoscaling.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=self.spec.resource_id,
            ScalableDimension=DIMENSION,
            MinCapacity=minimum,
            MaxCapacity=self.spec.max_instances,
        )

    def _set_desired_count(self, count: int) -> None:
        for attempt in range(20):  # refused while the endpoint is mid-update: wait and retry
            try:
                self.sagemaker.update_endpoint_weights_and_capacities(
                    EndpointName=self.spec.endpoint_name,
                    DesiredWeightsAndCapacities=[{"VariantName": VARIANT, "DesiredInstanceCount": count}],
                )
                return
            except ClientError as exc:
                if "Updating" not in exc.response["Error"].get("Message", "") or attempt == 19:
                    raise
                time.sleep(min(0.5 * 2**attempt, 10))

    def _usage(self, woken_at: float | None, released: bool) -> Usage:
        seconds = 0.0 if woken_at is None else time.monotonic() - woken_at
        return Usage(round(seconds, 2), round(seconds / 3600 * self.settings.hourly_price_usd, 6), released)

    # --- holding the endpoint: leases and the dead-man's switch ------------------------------------

    def _hold(self, holder: str) -> None:
        """Hold the endpoint for ``holder`` another hold_seconds, renewed every third of that until
        its scale_down: its lease, and the release AWS runs by itself if no render renews it."""
        self._write_lease(holder)
        self._schedule_release()
        with self._lock:
            self._holders.add(holder)
            if self._renewer is None:
                self._renewer = threading.Thread(target=self._renew_holds, name="endpoint-hold", daemon=True)
                self._renewer.start()

    def _renew_holds(self) -> None:
        while True:
            time.sleep(self.settings.hold_seconds / 3)
            with self._lock:
                holders = sorted(self._holders)
                if not holders:
                    self._renewer = None
                    return
            try:
                for holder in holders:
                    self._write_lease(holder)
                self._schedule_release()
            except (ClientError, BotoCoreError) as exc:  # the next renewal tries again
                run_logger().warning("could not renew the hold on %s: %s", self.spec.endpoint_name, exc)

    def _schedule_release(self) -> None:
        """If every render holding the endpoint dies, Application Auto Scaling itself forces it to zero
        (MaxCapacity 0) when the hold runs out, then gives the alarm-driven wake its range back."""
        release_at = datetime.now(UTC) + timedelta(seconds=self.settings.hold_seconds)
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

    def _cancel_release(self) -> None:
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

    @property
    def _release_action(self) -> str:
        return f"{self.spec.endpoint_name}-release-if-abandoned"

    @property
    def _restore_action(self) -> str:
        return f"{self.spec.endpoint_name}-restore-wake-range"

    # --- requests queued on the endpoint: a later run adopts them instead of asking again ---------

    def queued(self, cache_keys: set[str]) -> list[tuple[Submission, SynthesisJob]]:
        """Requests an earlier run submitted and never collected (it failed or was killed) that hold
        any of ``cache_keys``: the endpoint still runs them, so their outputs are gathered, not redone."""
        adopted = []
        for key in self._list_keys(self._queued_prefix()):
            try:
                record = json.loads(self.s3.get_object(Bucket=self.settings.bucket, Key=key)["Body"].read())
            except (ClientError, ValueError):
                continue
            if float(record.get("expires_at", 0)) < time.time():  # past its TTL: it can no longer run
                self.s3.delete_object(Bucket=self.settings.bucket, Key=key)
                continue
            segments = record["segments"]
            if not cache_keys & {s["cache_key"] for s in segments}:
                continue
            ids = tuple(s["id"] for s in segments)
            job = SynthesisJob(
                request_id=record["request_id"],
                payload={
                    "voice": record["voice"],
                    "segments": [{"id": s["id"], "text": s["text"]} for s in segments],
                },
                segment_ids=ids,
                cache_keys={s["id"]: s["cache_key"] for s in segments},
            )
            submission = Submission(
                record["request_id"], ids, record["output_location"], record["failure_location"]
            )
            adopted.append((submission, job))
        return adopted

    def _remember(self, submission: Submission, job: SynthesisJob) -> None:
        if set(job.cache_keys) != set(job.segment_ids):  # not a render's request: nothing to adopt it for
            return
        texts = {s["id"]: s["text"] for s in job.payload["segments"]}
        lifetime = self.settings.request_ttl_seconds + self.settings.invocation_timeout_seconds
        record = {
            "request_id": submission.request_id,
            "output_location": submission.output_location,
            "failure_location": submission.failure_location,
            "expires_at": time.time() + lifetime,
            "voice": {k: v for k, v in job.payload["voice"].items() if k != "ref_audio"},
            "segments": [
                {"id": i, "text": texts[i], "cache_key": job.cache_keys[i]} for i in job.segment_ids
            ],
        }
        self.s3.put_object(
            Bucket=self.settings.bucket,
            Key=f"{self._queued_prefix()}{submission.request_id}.json",
            Body=json.dumps(record).encode(),
            **self.encryption(),
        )

    def forget(self, submission: Submission) -> None:
        """The request is settled and its clips are cached (or it failed): no later run needs it."""
        key = f"{self._queued_prefix()}{submission.request_id}.json"
        with contextlib.suppress(ClientError, BotoCoreError):  # a stale record expires by itself
            self.s3.delete_object(Bucket=self.settings.bucket, Key=key)

    def _queued_prefix(self) -> str:
        return f"{self.settings.s3_prefix}/queued/{self.spec.endpoint_name}/"

    def _list_keys(self, prefix: str) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=self.settings.bucket, Prefix=prefix)
        return [item["Key"] for item in listing.get("Contents", [])]

    # --- leases --------------------------------------------------------------------------------

    def _lease_prefix(self) -> str:
        return f"{self.settings.s3_prefix}/leases/{self.spec.endpoint_name}/"

    def _write_lease(self, holder: str) -> None:
        expires = time.time() + self.settings.hold_seconds
        body = {"holder": holder, "expires_at": expires, "since": datetime.now(UTC).isoformat()}
        self.s3.put_object(
            Bucket=self.settings.bucket,
            Key=self._lease_prefix() + f"{holder}.json",
            Body=json.dumps(body).encode(),
            **self.encryption(),
        )

    def _delete_lease(self, holder: str) -> None:
        self.s3.delete_object(Bucket=self.settings.bucket, Key=self._lease_prefix() + f"{holder}.json")

    def _lease_keys(self) -> list[str]:
        return self._list_keys(self._lease_prefix())

    def _active_leases(self) -> list[str]:
        active = []
        for key in self._lease_keys():
            try:
                lease = json.loads(self.s3.get_object(Bucket=self.settings.bucket, Key=key)["Body"].read())
            except (ClientError, ValueError):
                continue
            if float(lease.get("expires_at", 0)) > time.time():
                active.append(key)
        return active

    # --- helpers -------------------------------------------------------------------------------

    def encryption(self) -> dict[str, str]:
        return s3_encryption(self.spec.kms_key_id)

    def _classify(self, exc: Exception, action: str) -> Exception:
        code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
        message = f"{action} failed: {code or exc.__class__.__name__}: {str(exc)[:200]}"
        if is_transient_client_error(exc) or not isinstance(exc, ClientError):
            return TransientSynthesisError(message)
        if code in {"AccessDenied", "AccessDeniedException", "UnrecognizedClientException"}:
            return ConfigError(message)
        return SegmentRejected(message)
