"""The local async endpoint: SageMaker's async inference reproduced where narrate depends on it.

For each endpoint created in the embedded AWS it keeps simulated instances and a request queue, and
every tick (a tenth of a second) it:

1. applies the registered autoscaling rules (:mod:`narrate.aws.local.autoscaling`): the bounds, the
   ``HasBacklogWithoutCapacity`` alarm and its step policy, target tracking (which alone never wakes
   an endpoint at zero), and due scheduled actions;
2. launches instances up to the desired count (each is in service after the cold start: launch plus
   ``model_fn``) and retires idle ones above it;
3. dispatches queued requests to free slots (``MaxConcurrentInvocationsPerInstance`` per instance),
   expires those past ``RequestTTLSeconds``, and runs the real ``model_server`` handler, writing the
   output or failure object to the endpoint configuration's S3 paths and notifying SNS.

A slot that frees also takes the next queued request at once, as SageMaker's queue does, without
waiting for the next tick's autoscaling reads.

Autoscaling periods and cooldowns are multiplied by ``time_scale`` so tests can run them in seconds.
The faults tests inject are :mod:`narrate.aws.local.faults`.
Instance time is accounted per endpoint as SageMaker bills it, each instance from its launch to its
release (:meth:`AsyncEndpointEmulator.instance_seconds`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import boto3

from model_server.config import ServerConfig
from narrate.aws.local.autoscaling import (
    VARIANT,
    AutoscalingRules,
    Load,
    RuleBook,
    desired_capacity,
    run_due_scheduled_actions,
    scalable_target,
)
from narrate.aws.local.faults import Faults
from narrate.aws.local.quotas import LocalQuotas
from narrate.aws.local.state import SimEndpoint, SimInstance, SimRequest
from narrate.aws.s3 import split_s3

log = logging.getLogger("narrate.aws.local")

DEFAULT_TTL_SECONDS = 21600
DEFAULT_INVOCATION_TIMEOUT_SECONDS = 900


class ThrottledError(Exception):
    """Answered as HTTP 400 ThrottlingException, as SageMaker does when invocations are throttled."""


@dataclass(frozen=True)
class EmulatorOptions:
    cold_start_seconds: float = 3.0  # instance launch + model load
    time_scale: float = 1.0  # multiplies alarm periods, cooldowns, request TTLs and invocation timeouts
    invocation_seconds: float = 0.0  # simulated accelerator time added to every invocation
    tick_seconds: float = 0.1
    # Faults for a render in another process (see narrate.aws.local.faults); tests only.
    fault_file: str | None = None


class AsyncEndpointEmulator:
    def __init__(self, aws_url: str, region: str, options: EmulatorOptions) -> None:
        self.options = options
        self._aws_url, self._region = aws_url, region
        self._clients: dict[str, Any] = {}  # made on first use: 0.1-0.2 s each, and most renders are cached
        self._clients_lock = threading.Lock()
        self._endpoints: dict[str, SimEndpoint] = {}
        self.faults = Faults(options.fault_file)
        self.quotas = LocalQuotas()
        self.synthesised: Counter[str] = Counter()  # segment id -> times the handler was asked for it
        self.launches: Counter[str] = Counter()  # endpoint name -> instances launched (cold starts)
        self.served_by: Counter[tuple[str, str]] = Counter()  # (endpoint, instance id) -> requests taken
        self.serving_seconds: Counter[str] = Counter()  # endpoint name -> requests' dispatch-to-done time
        self.model_loads: Counter[str] = Counter()  # endpoint name -> model_fn runs
        self._released_seconds: Counter[str] = Counter()  # endpoint name -> launch-to-release seconds
        self._scheduled_actions_run: set[tuple[str, str]] = set()
        self._lock = threading.RLock()
        self.lock = self._lock  # held by moto's request threads while they change endpoint state
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-async-endpoint", daemon=True)
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="sim-instance")

    # --- lifecycle ---------------------------------------------------------------------------

    def _client(self, name: str) -> Any:
        with self._clients_lock:  # boto3's default session is not safe to share between threads
            if name not in self._clients:
                self._clients[name] = boto3.session.Session().client(
                    name, endpoint_url=self._aws_url, region_name=self._region,
                    aws_access_key_id="local", aws_secret_access_key="local",
                )  # fmt: skip
            return self._clients[name]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)
        for endpoint in self._endpoints.values():
            for instance in endpoint.instances:
                self._release_model(instance)

    def wake_up(self) -> None:
        self._wake.set()

    # --- hooks called from moto's request threads ---------------------------------------------

    def on_endpoint_created(self, moto_endpoint: Any, backend: Any) -> None:
        with self._lock:
            variant = moto_endpoint.production_variants[0]
            variant["CurrentInstanceCount"] = 0
            moto_endpoint.endpoint_status = "Creating"
            self._endpoints[moto_endpoint.endpoint_name] = SimEndpoint(
                moto_endpoint.endpoint_name, moto_endpoint, backend
            )
        self.wake_up()

    def update_endpoint(self, backend: Any, endpoint_name: str, config_name: str) -> str:
        from moto.sagemaker.models import ValidationError

        autoscaled = scalable_target(self._client("application-autoscaling"), endpoint_name) is not None
        with self._lock:
            endpoint = self._endpoints.get(endpoint_name)
            if endpoint is None:
                raise ValidationError(message=f"Could not find endpoint '{endpoint_name}'.")
            try:
                new_config = backend.describe_endpoint_config(config_name)
            except KeyError:
                raise ValidationError(
                    message=f"Could not find endpoint configuration '{config_name}'."
                ) from None
            old_type = endpoint.config["ProductionVariants"][0].get("InstanceType")
            new_type = new_config["ProductionVariants"][0].get("InstanceType")
            if old_type != new_type and autoscaled:
                raise ValidationError(
                    message="The variant(s) [AllTraffic] must be deregistered as scalable targets with "
                    "AWS Application Auto Scaling before they can be removed or have their instance "
                    "type updated."
                )
            endpoint.moto_endpoint.endpoint_config_name = config_name
            endpoint.moto_endpoint.endpoint_status = "Updating"
            endpoint.container_failing = False  # the new configuration gets its own chance
            for instance in endpoint.instances:  # blue/green: new instances replace the old ones
                instance.retiring = True
        self.wake_up()
        return str(endpoint.moto_endpoint.arn)

    def withhold_capacity(self, withhold: bool) -> None:
        """Fault injection: no instance launches (as when the region has no capacity of the type)."""
        with self._lock:
            self.faults.capacity_withheld = withhold
        self.wake_up()

    def set_invocation_seconds(self, seconds: float) -> None:
        """Change the simulated accelerator time of each invocation from now on."""
        with self._lock:
            self.options = replace(self.options, invocation_seconds=seconds)

    def set_cold_start_seconds(self, seconds: float) -> None:
        """Change how long a new instance takes to come into service, from now on."""
        with self._lock:
            self.options = replace(self.options, cold_start_seconds=seconds)

    def throttle_next_invocations(self, count: int) -> None:
        """Fault injection: answer the next ``count`` invocations with ThrottlingException."""
        self.faults.throttle_next(count)

    def fail_segments_once(self, segment_ids: set[str], message: str = "injected fault") -> None:
        """Fault injection: the next output of each of these segments carries a final error instead."""
        self.faults.fail_segments_once(segment_ids, message)

    def damage_next_outputs(self, count: int, how: str) -> None:
        """Fault injection on the next ``count`` outputs: ``drop`` (never written), ``truncate`` (the
        first half of the body) or ``not-audio`` (every segment's audio replaced by other bytes)."""
        self.faults.damage_next_outputs(count, how)

    def enqueue(self, endpoint_name: str, headers: dict[str, str]) -> dict[str, str]:
        if self.faults.take_throttle():
            raise ThrottledError("Rate exceeded")
        with self._lock:
            endpoint = self._endpoints.get(endpoint_name)
            if endpoint is None:
                raise LookupError(f"Endpoint {endpoint_name} of account 123456789012 not found.")
            output = endpoint.config.get("AsyncInferenceConfig", {}).get("OutputConfig", {})
            request_uuid = str(uuid.uuid4())
            request = SimRequest(
                inference_id=headers.get("x-amzn-sagemaker-inference-id") or request_uuid,
                input_location=headers["x-amzn-sagemaker-inputlocation"],
                content_type=headers.get("x-amzn-sagemaker-content-type")
                or headers.get("content-type", "application/json"),
                accept=headers.get("x-amzn-sagemaker-accept") or headers.get("accept") or "application/json",
                output_location=f"{output['S3OutputPath'].rstrip('/')}/{request_uuid}.out",
                failure_location=f"{output.get('S3FailurePath', output['S3OutputPath']).rstrip('/')}"
                f"/{request_uuid}-error.out",
                enqueued_at=time.monotonic(),
                ttl_seconds=self._scaled_header(headers, "requestttlseconds", DEFAULT_TTL_SECONDS),
                invocation_timeout_seconds=self._scaled_header(
                    headers, "invocationtimeoutseconds", DEFAULT_INVOCATION_TIMEOUT_SECONDS
                ),
            )
            endpoint.queue.append(request)
        self.wake_up()
        return {
            "InferenceId": request.inference_id,
            "OutputLocation": request.output_location,
            "FailureLocation": request.failure_location,
        }

    def _scaled_header(self, headers: dict[str, str], name: str, default: float) -> float:
        return self.options.time_scale * float(headers.get(f"x-amzn-sagemaker-{name}") or default)

    def inspect(self, endpoint_name: str) -> dict[str, int]:
        """What the emulator holds for an endpoint: queued and in-flight requests, instances."""
        with self._lock:
            endpoint = self._endpoints.get(endpoint_name)
            if endpoint is None:
                return {"queued": 0, "in_flight": 0, "instances": 0, "in_service": 0}
            now = time.monotonic()
            return {
                "queued": len(endpoint.queue),
                "in_flight": endpoint.in_flight,
                "instances": len(endpoint.instances),
                "in_service": sum(1 for i in endpoint.instances if i.in_service(now)),
            }

    def instance_seconds(self, endpoint_name: str) -> float:
        """Instance time of an endpoint so far (what SageMaker bills, the benchmarks' GPU-seconds):
        every instance from its launch to its release, the ones still up counted until now."""
        with self._lock:
            now = time.monotonic()
            endpoint = self._endpoints.get(endpoint_name)
            live = sum(now - i.launched_at for i in endpoint.instances) if endpoint else 0.0
            return self._released_seconds[endpoint_name] + live

    def _account_release(self, endpoint: SimEndpoint, instance: SimInstance, now: float) -> None:
        self._released_seconds[endpoint.name] += now - instance.launched_at

    # --- the control loop ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.options.tick_seconds)
            self._wake.clear()
            try:
                self.tick()
            except Exception:  # the emulator must outlive any one bad tick
                log.exception("local async endpoint tick failed")

    def tick(self) -> None:
        if not self._endpoints:  # no endpoint, no rule to run (and no client made for nothing)
            return
        autoscaling = self._client("application-autoscaling")
        run_due_scheduled_actions(autoscaling, self._scheduled_actions_run)  # outside the lock: it calls moto
        # Rules are read and applied under one lock hold: a capacity change from a moto request thread
        # (which takes this lock) lands wholly before or after, never on stale rules. Safe from
        # deadlock: the moto server is threaded and describe calls never take the lock.
        with self._lock:
            book = RuleBook(autoscaling, self._client("cloudwatch")).read()
            now = time.monotonic()
            for name, endpoint in list(self._endpoints.items()):
                if endpoint.deleted:
                    self._retire_all(endpoint, now)
                    if self._endpoints.get(name) is endpoint:  # not a new endpoint of the same name
                        self._endpoints.pop(name)
                    continue
                self._autoscale(endpoint, book.rules(name), now)
                self._fit_instances(endpoint, now)
                self._publish_state(endpoint, now)
                self._dispatch(endpoint, now)

    def _autoscale(self, endpoint: SimEndpoint, rules: AutoscalingRules, now: float) -> None:
        variant = endpoint.variant
        current = int(variant.get("DesiredInstanceCount") or 0)
        in_service = sum(1 for i in endpoint.instances if i.in_service(now) and not i.retiring)
        load = Load(current, in_service, len(endpoint.queue) + endpoint.in_flight, now)
        desired = desired_capacity(rules, endpoint.scaling, load, self.options.time_scale)
        if desired != current:
            log.info("autoscaling %s: desired instances %s -> %s", endpoint.name,
                     variant.get("DesiredInstanceCount"), desired)  # fmt: skip
            variant["DesiredInstanceCount"] = desired

    def _fit_instances(self, endpoint: SimEndpoint, now: float) -> None:
        desired = int(endpoint.variant.get("DesiredInstanceCount") or 0)
        active = [i for i in endpoint.instances if not i.retiring]
        withheld = self.faults.capacity_withheld or endpoint.container_failing
        for _ in range(0 if withheld else desired - len(active)):
            instance = SimInstance(uuid.uuid4().hex[:8], now, now + self.options.cold_start_seconds)
            endpoint.instances.append(instance)
            self.launches[endpoint.name] += 1
            self._pool.submit(self._load_model, endpoint, instance)
            log.info("%s: launching instance %s", endpoint.name, instance.instance_id)
        surplus = len(active) - desired
        for instance in sorted(active, key=lambda i: (i.busy, -i.launched_at)):
            if surplus <= 0:
                break
            instance.retiring, surplus = True, surplus - 1
        replacements_ready = sum(1 for i in endpoint.instances if not i.retiring and i.in_service(now))
        for instance in list(endpoint.instances):
            if instance.retiring and instance.busy == 0 and (replacements_ready >= desired or desired == 0):
                endpoint.instances.remove(instance)
                self._release_model(instance)
                self._account_release(endpoint, instance, now)
                log.info("%s: instance %s released", endpoint.name, instance.instance_id)

    def _publish_state(self, endpoint: SimEndpoint, now: float) -> None:
        """What describe_endpoint shows: instances in service, and the status they imply."""
        variant = endpoint.variant
        in_service = sum(1 for i in endpoint.instances if i.in_service(now) and not i.retiring)
        serving = sum(1 for i in endpoint.instances if i.in_service(now))
        desired = int(variant.get("DesiredInstanceCount") or 0)
        variant["CurrentInstanceCount"] = in_service
        if endpoint.moto_endpoint.endpoint_status == "Failed":
            return  # as on AWS: a failed endpoint stays failed until it is updated or deleted
        if endpoint.created:
            if in_service >= 1:
                endpoint.created = False
                endpoint.moto_endpoint.endpoint_status = "InService"
            return
        stable = in_service == desired and serving == in_service
        endpoint.moto_endpoint.endpoint_status = "InService" if stable else "Updating"

    def _dispatch(self, endpoint: SimEndpoint, now: float) -> None:
        limit = endpoint.slots_per_instance
        while endpoint.queue:
            request = endpoint.queue[0]
            if now - request.enqueued_at > request.ttl_seconds:
                endpoint.queue.popleft()
                self._pool.submit(
                    self._fail, endpoint, request, 400, "Request TTL expired before an instance took it."
                )
                continue
            free = [i for i in endpoint.instances if i.in_service(now) and not i.retiring and i.busy < limit]
            if not free:
                return
            instance = min(free, key=lambda i: i.busy)
            endpoint.queue.popleft()
            instance.busy += 1
            self.served_by[endpoint.name, instance.instance_id] += 1
            endpoint.in_flight += 1
            self._pool.submit(self._serve, endpoint, instance, request)

    # --- what an instance does -----------------------------------------------------------------

    def _load_model(self, endpoint: SimEndpoint, instance: SimInstance) -> None:
        """What a cold start does after launch: the container starts (or fails to, e.g. its requirements
        install), then model_fn runs, configured by the model's container Environment. A model_fn that
        fails does not stop the container, as with the real toolkit: the instance is in service and
        every request it takes loads again, and is refused with the load error while that fails."""
        failure = self.faults.container_start_failure
        if failure:
            self._container_failed(endpoint, instance, failure)
            return
        model = None
        try:
            model = self._run_model_fn(endpoint)
        except Exception as exc:
            log.warning(
                "%s: instance %s is up, its model_fn failed: %s", endpoint.name, instance.instance_id, exc
            )
        with self._lock:
            instance.ready_at = max(instance.ready_at, time.monotonic())
            instance.model, instance.started = model, True
        self.wake_up()

    def _run_model_fn(self, endpoint: SimEndpoint) -> Any:
        from model_server import inference

        with self._lock:
            self.model_loads[endpoint.name] += 1
        return inference.load_model(ServerConfig.from_env(self._container_environment(endpoint)))

    def _container_failed(self, endpoint: SimEndpoint, instance: SimInstance, error: str) -> None:
        """As SageMaker: a container that fails while the endpoint is created fails the endpoint with a
        FailureReason; one that fails on a later scale-out leaves the endpoint without that capacity."""
        log.warning("%s: instance %s failed to start: %s", endpoint.name, instance.instance_id, error)
        with self._lock:
            endpoint.instances.remove(instance)
            self._account_release(endpoint, instance, time.monotonic())
            endpoint.container_failing = True
            if endpoint.created:
                endpoint.moto_endpoint.endpoint_status = "Failed"
                endpoint.moto_endpoint.failure_reason = (
                    f"The primary container for production variant {VARIANT} did not pass the ping health "
                    f"check: {error}. Please check CloudWatch logs for this endpoint."
                )

    @staticmethod
    def _container_environment(endpoint: SimEndpoint) -> dict[str, str]:
        model_name = endpoint.config["ProductionVariants"][0]["ModelName"]
        container = endpoint.backend.describe_model(model_name).primary_container
        return dict(container.get("Environment") or {})

    def _release_model(self, instance: SimInstance) -> None:
        model, instance.model = instance.model, None
        if model is not None:
            for engine in model.engines.values():
                engine.close()

    def _retire_all(self, endpoint: SimEndpoint, now: float) -> None:
        for instance in endpoint.instances:
            self._release_model(instance)
            self._account_release(endpoint, instance, now)

    def _serve(self, endpoint: SimEndpoint, instance: SimInstance, request: SimRequest) -> None:
        from model_server import inference

        done = threading.Event()
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                time.sleep(self.options.invocation_seconds)
                body = self._get(request.input_location)
                parsed = inference.input_fn(body, request.content_type)
                if instance.model is None:  # the toolkit initialises again on every request until it loads
                    instance.model = self._run_model_fn(endpoint)
                with self._lock:
                    self.synthesised.update(s.id for s in parsed.request.segments)
                output = inference.output_fn(inference.predict_fn(parsed, instance.model), request.accept)
                result["output"] = self.faults.into_output(output)
            except Exception as exc:  # the toolkit answers every hook exception 400, its message as it is
                result["error"] = (400, str(exc))
            finally:
                done.set()

        dispatched = time.monotonic()
        threading.Thread(target=run, daemon=True).start()
        try:
            if not done.wait(request.invocation_timeout_seconds):
                self._fail(endpoint, request, 500, "Invocation timed out waiting for the model's response.")
            elif "error" in result:
                self._fail(endpoint, request, *result["error"])
            else:
                output = result["output"]
                body = self.faults.damage(output.encode() if isinstance(output, str) else output)
                if body is not None:  # None: the output object never appears
                    self._put(request.output_location, body)
                    self._notify(endpoint, request, success=True)
        except Exception:  # no output and no failure object: say so, or the request vanishes unexplained
            log.exception("%s: request %s ended with nothing written", endpoint.name, request.inference_id)
        finally:
            with self._lock:
                instance.busy -= 1
                endpoint.in_flight -= 1
                self.serving_seconds[endpoint.name] += time.monotonic() - dispatched
                if self._endpoints.get(endpoint.name) is endpoint and not endpoint.deleted:  # as SageMaker:
                    self._dispatch(endpoint, time.monotonic())  # a freed slot takes the next request now
            self.wake_up()

    def _fail(self, endpoint: SimEndpoint, request: SimRequest, code: int, message: str) -> None:
        body = {"code": code, "type": "InternalServerException", "message": message}
        self._put(request.failure_location, json.dumps(body).encode())
        self._notify(endpoint, request, success=False, message=message)

    def _notify(self, endpoint: SimEndpoint, request: SimRequest, success: bool, message: str = "") -> None:
        notification = (
            endpoint.config.get("AsyncInferenceConfig", {})
            .get("OutputConfig", {})
            .get("NotificationConfig", {})
        )
        topic = notification.get("SuccessTopic" if success else "ErrorTopic")
        if not topic:
            return
        event = {
            "awsRegion": "us-east-1",
            "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "receivedTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "invocationStatus": "Completed" if success else "Failed",
            "requestParameters": {"endpointName": endpoint.name, "inputLocation": request.input_location},
            "responseParameters": {"outputLocation": request.output_location}
            if success
            else {"failureLocation": request.failure_location},
            "inferenceId": request.inference_id,
            "failureReason": None if success else message,
        }
        self._client("sns").publish(TopicArn=topic, Message=json.dumps(event))

    def _get(self, location: str) -> bytes:
        bucket, key = split_s3(location)
        return self._client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()

    def _put(self, location: str, body: bytes) -> None:
        bucket, key = split_s3(location)
        self._client("s3").put_object(Bucket=bucket, Key=key, Body=body)
