"""Endpoints serve synthesis requests behind one interface, so the flow never knows which one runs.

``sagemaker`` drives an Amazon SageMaker async endpoint (real AWS, or the embedded AWS of local
mode); ``inprocess`` runs the container handler in this process; ``polly`` calls Amazon Polly, and
serves every Polly voice whatever the backend (:func:`endpoint_for`). Tests and plugins add
endpoints with :func:`register_endpoint`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from narrate.errors import ConfigError


@dataclass(frozen=True)
class SynthesisJob:
    """One request to the handler: a batch of segments sharing one voice."""

    request_id: str
    payload: dict[str, Any]
    segment_ids: tuple[str, ...]
    cache_keys: dict[str, str] = field(hash=False)


@dataclass(frozen=True)
class Submission:
    """Where a submitted request's result or failure will appear (as the endpoint returned them)."""

    request_id: str
    segment_ids: tuple[str, ...]
    output_location: str
    failure_location: str


@dataclass(frozen=True)
class Usage:
    """Instance time one render held, from its wake to its release."""

    gpu_seconds: float
    cost_usd: float
    released: bool


class Endpoint(Protocol):
    name: str

    def ensure(self, holder: str) -> dict[str, Any]:
        """Create whatever is missing (idempotent) and hold the endpoint for ``holder`` until its
        scale_down; returns a description for logs."""
        ...

    def wake(self, deadline_seconds: float, holder: str) -> None:
        """Have capacity before the deadline (held for ``holder``) or raise EndpointError."""
        ...

    def stage(self, job: SynthesisJob) -> str:
        """Store the request payload where the endpoint reads it; needs no instance."""
        ...

    def submit(self, job: SynthesisJob, input_location: str) -> Submission: ...

    def fetch(self, submission: Submission, deadline_seconds: float) -> bytes:
        """The output body; raises SegmentRejected (final) or TransientSynthesisError."""
        ...

    def scale_down(self, holder: str) -> Usage:
        """Release ``holder``'s claim; release the instances unless another holder still needs them."""
        ...

    def queued(self, cache_keys: set[str]) -> list[tuple[Submission, SynthesisJob]]:
        """Requests an earlier run submitted and never collected that hold any of ``cache_keys``."""
        ...

    def forget(self, submission: Submission) -> None:
        """The request is settled and its clips are cached: no later run needs to adopt it."""
        ...


class NothingQueued:
    """For endpoints whose requests end with the process that made them: nothing to adopt."""

    def queued(self, cache_keys: set[str]) -> list[tuple[Submission, SynthesisJob]]:
        return []

    def forget(self, submission: Submission) -> None:
        return None


_factories: dict[str, Callable[[], Endpoint]] = {}
_instances: dict[str, Endpoint] = {}
_lock = threading.Lock()


def register_endpoint(name: str, factory: Callable[[], Endpoint]) -> None:
    with _lock:
        _factories[name] = factory
        _instances.pop(name, None)


def reset_endpoints() -> None:
    """Forget built endpoints (they are rebuilt from current settings on next use)."""
    with _lock:
        _instances.clear()


def get_endpoint(name: str) -> Endpoint:
    """The process-wide instance of a named endpoint (a loaded model is kept between renders)."""
    with _lock:
        if name not in _instances:
            if name not in _factories:
                raise ConfigError(f"unknown backend {name!r}; use one of {', '.join(sorted(_factories))}")
            _instances[name] = _factories[name]()
        return _instances[name]


POLLY = "polly"


def endpoint_for(engine: str, backend: str) -> str:
    """The endpoint that speaks a voice engine: Polly's voices only Polly has; the rest the backend."""
    return POLLY if engine == POLLY else backend


def _inprocess() -> Endpoint:
    from narrate.endpoints.inprocess import InProcessEndpoint
    from narrate.settings import get_settings

    settings = get_settings()
    return InProcessEndpoint(settings.state_dir / "inprocess-endpoint", settings.server_config())


def _sagemaker() -> Endpoint:
    from narrate.endpoints.sagemaker import SageMakerEndpoint
    from narrate.settings import get_settings

    return SageMakerEndpoint(get_settings())


def _polly() -> Endpoint:
    import boto3
    from botocore.config import Config

    from narrate.endpoints.polly import PollyEndpoint
    from narrate.settings import get_settings

    # botocore tries a throttled call 3 times in all; then the segment fails transiently and the
    # flow's next round submits it again
    retries = {"mode": "standard", "total_max_attempts": 3}
    config = Config(region_name=get_settings().region, retries=retries)
    return PollyEndpoint(boto3.client("polly", config=config))


register_endpoint("inprocess", _inprocess)
register_endpoint(POLLY, _polly)
register_endpoint("sagemaker", _sagemaker)
