"""Where moto differs from AWS in ways narrate depends on, hand the behaviour to the emulator.

- moto refuses ``ml.g5.*``/``ml.g6.*`` instance types: accept every ``ml.*`` type, as AWS does.
- moto applies capacity instantly and reports endpoints InService at once: the emulator owns
  ``CurrentInstanceCount`` and the status, moto keeps only the desired count.
- moto has no ``UpdateEndpoint``: the emulator rolls out the new configuration.
- moto's ``InvokeEndpointAsync`` runs nothing: requests go to the emulator's queue.
- moto has no Service Quotas for SageMaker: the emulator's (:mod:`narrate.aws.local.quotas`) answer
  ``ListServiceQuotas``, and ``CreateEndpoint`` beyond them is refused (ResourceLimitExceeded).
- moto's Polly ``SynthesizeSpeech`` answers eight zero bytes: the dev voice answers instead, marked
  emulated (:mod:`narrate.aws.local.polly_emulator`).
"""

from __future__ import annotations

import json
from typing import Any

from moto.polly import responses as polly_responses
from moto.polly.resources import VOICE_DATA
from moto.sagemaker import models as sm_models
from moto.sagemaker import responses as sm_responses
from moto.sagemakerruntime import responses as runtime_responses
from moto.servicequotas import responses as quota_responses

from narrate.aws.local.emulator import AsyncEndpointEmulator, ThrottledError
from narrate.aws.local.polly_emulator import PollyEmulator, speech_response

_active: list[AsyncEndpointEmulator] = []
_polly: list[PollyEmulator] = []
_originals: dict[str, Any] = {}


def _emulator() -> AsyncEndpointEmulator:
    if not _active:
        raise RuntimeError("the local async endpoint emulator is not running")
    return _active[-1]


def _accept_ml_instance_types(self: Any, instance_type: str) -> None:
    if not str(instance_type).startswith("ml."):
        raise sm_models.ValidationError(message=f"Value '{instance_type}' at 'instanceType' is not valid")


def _create_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str, tags: Any) -> Any:
    if endpoint_name in self.endpoints:  # moto would silently replace it; AWS refuses
        arn = sm_models.FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
        raise sm_models.ValidationError(message=f'Cannot create already existing endpoint "{arn}".')
    variant = self.describe_endpoint_config(endpoint_config_name)["ProductionVariants"][0]
    quota = _emulator().quotas.value(variant["InstanceType"])
    if int(variant.get("InitialInstanceCount", 1)) > quota:
        raise ResourceLimitExceeded(
            f"The account-level service limit '{variant['InstanceType']} for endpoint usage' is {quota:g} "
            f"Instances, with current utilization of 0 Instances and a request delta of "
            f"{variant.get('InitialInstanceCount', 1)} Instances. Please use AWS Service Quotas to request "
            "an increase for this quota."
        )
    endpoint = _originals["create_endpoint"](self, endpoint_name, endpoint_config_name, tags)
    _emulator().on_endpoint_created(endpoint, self)
    return endpoint


def _update_capacity(
    self: Any, endpoint_name: str, desired_weights_and_capacities: list[dict[str, Any]]
) -> str:
    emulator = _emulator()
    with emulator.lock:
        return _apply_capacity(self, endpoint_name, desired_weights_and_capacities)


def _apply_capacity(
    self: Any, endpoint_name: str, desired_weights_and_capacities: list[dict[str, Any]]
) -> str:
    endpoint = self.endpoints.get(endpoint_name)
    if endpoint is None:
        arn = sm_models.FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
        raise sm_models.AWSValidationException(f'Could not find endpoint "{arn}".')
    for change in desired_weights_and_capacities:
        for variant in endpoint.production_variants:
            if variant["VariantName"] == change.get("VariantName"):
                if change.get("DesiredInstanceCount") is not None:
                    variant["DesiredInstanceCount"] = int(change["DesiredInstanceCount"])
                if change.get("DesiredWeight") is not None:
                    variant["DesiredWeight"] = variant["CurrentWeight"] = change["DesiredWeight"]
    _emulator().wake_up()
    return endpoint.arn


def _update_endpoint_action(self: Any) -> Any:
    endpoint_name = self._get_param("EndpointName")
    config_name = self._get_param("EndpointConfigName")
    arn = _emulator().update_endpoint(self.sagemaker_backend, endpoint_name, config_name)
    return sm_responses.ActionResult({"EndpointArn": arn})


def _invoke_endpoint_async_action(self: Any) -> Any:
    endpoint_name = self.path.split("/")[2]
    headers = {k.lower(): v for k, v in self.headers.items()}
    try:
        response = _emulator().enqueue(endpoint_name, headers)
    except LookupError as exc:
        return _error(400, "ValidationError", str(exc))
    except ThrottledError as exc:
        return _error(400, "ThrottlingException", str(exc))
    return (
        202,
        {
            "status": "202",
            "X-Amzn-SageMaker-OutputLocation": response["OutputLocation"],
            "X-Amzn-SageMaker-FailureLocation": response["FailureLocation"],
        },
        json.dumps({"InferenceId": response["InferenceId"]}),
    )


class ResourceLimitExceeded(sm_models.ValidationError):  # type: ignore[misc]
    def __init__(self, message: str) -> None:
        super().__init__(message=message)
        self.code = "ResourceLimitExceeded"


def _list_service_quotas_action(self: Any) -> str:
    params = json.loads(self.body or "{}")
    quotas = _emulator().quotas.listing() if params.get("ServiceCode") == "sagemaker" else []
    return json.dumps({"Quotas": quotas})


def _polly_speech_action(self: Any) -> Any:
    if not _polly:
        return _error(500, "ServiceFailureException", "the embedded AWS's Polly is not running")
    body = self.body if isinstance(self.body, bytes) else str(self.body or "").encode()
    return speech_response(_polly[-1], body, VOICE_DATA)


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], str]:
    headers = {"status": str(status), "x-amzn-ErrorType": code}  # moto takes the status from here
    return status, headers, json.dumps({"__type": code, "message": message})


def install(emulator: AsyncEndpointEmulator, polly: PollyEmulator | None = None) -> None:
    _active.append(emulator)
    if polly is not None:
        _polly.append(polly)
    if _originals:
        return
    backend = sm_models.SageMakerModelBackend
    _originals["create_endpoint"] = backend.create_endpoint
    _originals["update_capacity"] = backend.update_endpoint_weights_and_capacities
    _originals["config_validate"] = sm_models.FakeEndpointConfig.validate_instance_type
    backend.create_endpoint = _create_endpoint  # type: ignore[method-assign]
    backend.update_endpoint_weights_and_capacities = _update_capacity  # type: ignore[method-assign]
    sm_models.FakeEndpointConfig.validate_instance_type = _accept_ml_instance_types  # type: ignore[method-assign]
    sm_responses.SageMakerResponse.update_endpoint = _update_endpoint_action  # type: ignore[attr-defined]
    runtime_responses.SageMakerRuntimeResponse.invoke_endpoint_async = _invoke_endpoint_async_action  # type: ignore[method-assign]
    # moto 5.2.6 answers SynthesizeSpeech in synthesize_speech (earlier releases: speech); moto is pinned
    polly_responses.PollyResponse.synthesize_speech = _polly_speech_action  # type: ignore[method-assign]
    quota_responses.ServiceQuotasResponse.list_service_quotas = _list_service_quotas_action  # type: ignore[attr-defined]


def uninstall(emulator: AsyncEndpointEmulator, polly: PollyEmulator | None = None) -> None:
    if emulator in _active:
        _active.remove(emulator)
    if polly in _polly:
        _polly.remove(polly)
