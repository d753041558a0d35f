"""The SageMaker async endpoint behind the Endpoint interface, with boto3 only.

Wake is immediate (MinCapacity raised to the instances the render's work is worth,
:mod:`narrate.endpoints.capacity`), not left to the two-minute backlog alarm. Scale-down releases every
instance at once (MinCapacity 0, DesiredInstanceCount 0), unless another render still holds it: how
renders hold the endpoint, and how a dead render lets go of it by itself, is
:mod:`narrate.endpoints.hold`; the requests a dead render left queued are
:mod:`narrate.endpoints.queued`. The boto3 clients come in through :class:`AwsClients`.
"""

from __future__ import annotations

import random
import threading
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from narrate.aws.clients import AwsClients
from narrate.aws.pricing import hourly_price
from narrate.aws.s3 import s3_encryption, split_s3
from narrate.endpoints.base import JobSummary, Submission, SynthesisJob, Usage
from narrate.endpoints.hold import EndpointHold
from narrate.endpoints.queued import QueuedRequests
from narrate.endpoints.sagemaker_setup import (
    FAILED_STATES,
    POLL_CAP_SECONDS,
    VARIANT,
    BucketSpec,
    EndpointSpec,
    alarm_name,
    created_unless_existing,
    deregister_autoscaling,
    describe_endpoint,
    ensure_bucket,
    ensure_model_and_config,
    failure_message,
    instances_in_service,
    register_autoscaling,
    set_min_capacity,
    wait_for_endpoint,
)
from narrate.errors import (
    ConfigError,
    EndpointError,
    SegmentRejected,
    TransientSynthesisError,
    is_auth_error,
    is_transient,
)
from narrate.log import run_logger
from narrate.synthesis.responses import failure_error

if TYPE_CHECKING:
    from narrate.settings import Settings


class SageMakerEndpoint:
    name = "sagemaker"

    def __init__(self, settings: Settings, clients: AwsClients | None = None) -> None:
        self.settings = settings
        self.spec = EndpointSpec.from_settings(settings)
        clients = clients or AwsClients(settings.region)
        self.sagemaker, self.runtime, self.s3 = clients.sagemaker, clients.runtime, clients.s3
        self.autoscaling, self.cloudwatch = clients.autoscaling, clients.cloudwatch
        self.hold = EndpointHold(self.s3, self.autoscaling, self.spec, settings.hold_seconds)
        lifetime = settings.request_ttl_seconds + settings.invocation_timeout_seconds
        self.requests = QueuedRequests(self.s3, self.spec, lifetime)
        self.price = hourly_price(settings.instance_type, settings.region, settings.hourly_price_usd)
        self._woken_at: dict[str, float] = {}
        self._launched_at: float | None = None  # set when ensure itself brought up an instance
        self._stopped: set[str] = set()  # requests whose fetch gives up (the render stopped waiting)
        self._lock = threading.Lock()

    # --- ensure --------------------------------------------------------------------------------

    def ensure(self, holder: str = "") -> dict[str, Any]:
        """Idempotent: describe first, create what is missing, roll out a changed configuration."""
        spec, created = self.spec, []
        if self.settings.create_bucket and ensure_bucket(self.s3, BucketSpec.from_settings(self.settings)):
            created.append(f"bucket {spec.bucket}")
        if holder:  # from here on no other render's scale-down may release the instance
            self.hold.write_lease(holder)
        created += ensure_model_and_config(self.sagemaker, spec)
        description, changes = self._endpoint_as_configured()
        created += changes
        register_autoscaling(self.autoscaling, self.cloudwatch, spec)
        if holder:  # an endpoint just created has an instance: it is held (and released) like a woken one
            self.hold.hold(holder)
        variant = description["ProductionVariants"][0]
        state = {
            "endpoint": spec.endpoint_name,
            "config": spec.config_name,
            "status": description["EndpointStatus"],
            "instances": variant.get("CurrentInstanceCount", 0),
            "created": created,
        }
        run_logger().info("endpoint ensured: %s", state)
        return state

    def _endpoint_as_configured(self) -> tuple[dict[str, Any], list[str]]:
        """The endpoint, created, replaced or rolled out to this configuration; what was done."""
        spec, deadline = self.spec, self.settings.wake_deadline_seconds
        description = describe_endpoint(self.sagemaker, spec.endpoint_name)
        if description is None:
            created = self._create_endpoint()
            description = wait_for_endpoint(self.sagemaker, spec.endpoint_name, deadline)
            return description, [f"endpoint {spec.endpoint_name}"] if created else []
        if description["EndpointStatus"] in FAILED_STATES:
            if description["EndpointConfigName"] == spec.config_name:
                raise EndpointError(
                    f"{failure_message(spec.endpoint_name, description)}; the configuration is unchanged "
                    "since it failed: fix the cause (or `narrate endpoint down` if it was passing), run again"
                )
            return self._replace_failed_endpoint(description), [
                f"endpoint {spec.endpoint_name} (replaced the failed one)"
            ]
        if description["EndpointConfigName"] == spec.config_name:
            return description, []
        run_logger().info("configuration changed: rolling %s out to %s", spec.endpoint_name, spec.config_name)
        wait_for_endpoint(self.sagemaker, spec.endpoint_name, deadline)
        deregister_autoscaling(self.autoscaling, spec)  # AWS requires it before a type change
        self.sagemaker.update_endpoint(EndpointName=spec.endpoint_name, EndpointConfigName=spec.config_name)
        description = wait_for_endpoint(self.sagemaker, spec.endpoint_name, deadline)
        return description, [f"rollout to {spec.config_name}"]

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
            Tags=self.spec.aws_tags,
        ):
            return False
        self._launched_at = time.monotonic()
        run_logger().info("creating endpoint %s (%s)", self.spec.endpoint_name, self.spec.instance_type)
        return True

    # --- wake ----------------------------------------------------------------------------------

    def wake(self, deadline_seconds: float, holder: str, instances: int = 1) -> None:
        """Raise MinCapacity now to ``instances`` (at most MaxCapacity; never below what another live
        lease asked for), then wait under the deadline for the first instance in service: requests
        queue meanwhile, and each instance takes them as it comes up."""
        instances = max(1, min(instances, self.spec.max_instances))
        with self._lock:
            launched, self._launched_at = self._launched_at, None
            self._woken_at.setdefault(holder, launched or time.monotonic())
        self.hold.hold(holder, instances)
        wanted = self.hold.most_wanted([instances, *self.hold.active_leases().values()])
        set_min_capacity(self.autoscaling, self.spec, wanted)
        started = time.monotonic()
        description = wait_for_endpoint(
            self.sagemaker,
            self.spec.endpoint_name,
            deadline_seconds,
            ready=lambda d: instances_in_service(d) >= 1 and d["EndpointStatus"] in {"InService", "Updating"},
            timeout_message="endpoint {name} has no instance after {seconds:.0f} s (status {status}); "
            "queued requests stay queued and a later run completes them",
        )
        run_logger().info("endpoint %s awake: %d instance(s) after %.1f s (%d asked for)",
                          self.spec.endpoint_name, instances_in_service(description),
                          time.monotonic() - started, wanted)  # fmt: skip

    # --- requests ------------------------------------------------------------------------------

    def stage(self, job: SynthesisJob) -> str:
        key = f"{self.spec.s3_prefix}/requests/{job.request_id}.json"
        try:
            self.s3.put_object(
                Bucket=self.spec.bucket,
                Key=key,
                Body=job.body(),
                ContentType="application/json",
                **s3_encryption(self.spec.kms_key_id),
            )
        except (ClientError, BotoCoreError) as exc:
            raise classify(exc, "upload request") from None
        return f"s3://{self.spec.bucket}/{key}"

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
            raise classify(exc, "invoke") from None
        submission = Submission(
            request_id=job.request_id,
            segment_ids=job.segment_ids,
            output_location=response["OutputLocation"],
            failure_location=response.get("FailureLocation", ""),
        )
        self.requests.remember(submission, job)
        return submission

    def fetch(self, submission: Submission, deadline_seconds: float) -> bytes:
        """Poll the returned output and failure locations with back-off until one exists."""
        deadline = time.monotonic() + deadline_seconds
        delay = 0.1
        while True:
            if submission.request_id in self._stopped:
                raise TransientSynthesisError(f"request {submission.request_id}: the render stopped waiting")
            body = self.read_if_exists(submission.output_location)
            if body is not None:  # forgotten by the caller once the clips are safe in the cache
                return body
            if submission.failure_location:
                failure = self.read_if_exists(submission.failure_location)
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

    def read_if_exists(self, location: str) -> bytes | None:
        """The object at an s3:// location, or None while it does not exist."""
        bucket, key = split_s3(location)
        try:
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise classify(exc, "read output") from None

    def queued(self, cache_keys: set[str]) -> list[tuple[Submission, JobSummary]]:
        """Requests an earlier run submitted and never collected (it failed or was killed) that hold
        any of ``cache_keys``: the endpoint still runs them, so their outputs are gathered, not redone."""
        return self.requests.queued(cache_keys)

    def forget(self, submission: Submission) -> None:
        """The request is settled and its clips are cached (or it failed): no later run needs it."""
        self.requests.forget(submission)

    def stop_fetching(self, request_ids: set[str], forget: bool) -> None:
        with self._lock:
            self._stopped |= request_ids
        for request_id in sorted(request_ids) if forget else ():
            self.requests.forget(Submission(request_id, (), "", ""))

    # --- scale down ----------------------------------------------------------------------------

    def scale_down(self, holder: str) -> Usage:
        """Release every instance now (MinCapacity 0, DesiredInstanceCount 0) unless another render
        still holds a lease on the endpoint; then MinCapacity falls only to the most instances the others
        asked for, and no instance is taken away from them."""
        logger = run_logger()
        with self._lock:
            woken_at = self._woken_at.pop(holder, None)
        instances = self.hold.instances_of(holder)
        others = self.hold.let_go(holder)
        if others:
            still_wanted = self.hold.most_wanted(others.values())
            if still_wanted < instances:
                set_min_capacity(self.autoscaling, self.spec, still_wanted)
            logger.info("endpoint %s stays up: %d other render(s) still need it (%d instance(s))",
                        self.spec.endpoint_name, len(others), still_wanted)  # fmt: skip
            return self._usage(woken_at, instances, released=False)
        description = describe_endpoint(self.sagemaker, self.spec.endpoint_name)
        if description is None:
            return self._usage(woken_at, instances, released=True)
        set_min_capacity(self.autoscaling, self.spec, 0)
        if description["ProductionVariants"][0].get("DesiredInstanceCount"):
            self._set_desired_count(0)
        self.hold.cancel_release()
        usage = self._usage(woken_at, instances, released=True)
        logger.info("endpoint %s scaled to 0: %.1f GPU-seconds held, %s", self.spec.endpoint_name,
                    usage.gpu_seconds, usage.cost_text())  # fmt: skip
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
            "renders_holding_it": len(self.hold.active_leases()),
        }

    def delete(self) -> dict[str, Any]:
        """Remove the endpoint, its autoscaling and alarm (model and configs stay, they cost nothing)."""
        deregister_autoscaling(self.autoscaling, self.spec)
        self.cloudwatch.delete_alarms(AlarmNames=[alarm_name(self.spec)])
        if describe_endpoint(self.sagemaker, self.spec.endpoint_name) is not None:
            self.sagemaker.delete_endpoint(EndpointName=self.spec.endpoint_name)
        return {"endpoint": self.spec.endpoint_name, "status": "deleted"}

    def sleep(self) -> None:
        """Release the instance whatever any lease says (the `narrate endpoint sleep` command)."""
        self.hold.drop_all_leases()
        self.scale_down("manual")

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

    def _usage(self, woken_at: float | None, instances: int, released: bool) -> Usage:
        """Instance time from the wake to now, for each instance asked for (each is billed from its
        launch, at the wake, to its release, now)."""
        seconds = 0.0 if woken_at is None else (time.monotonic() - woken_at) * instances
        return Usage(round(seconds, 2), self.price.cost(seconds), released, self.price.source, instances)


def classify(exc: Exception, action: str) -> Exception:
    """A failed AWS call of the request path as the error the flow acts on: transient (retried),
    a missing permission (ConfigError), or a refusal of this request (final)."""
    code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
    message = f"{action} failed: {code or exc.__class__.__name__}: {str(exc)[:200]}"
    if is_transient(exc):
        return TransientSynthesisError(message)
    if is_auth_error(exc):
        return ConfigError(message)
    return SegmentRejected(message)
