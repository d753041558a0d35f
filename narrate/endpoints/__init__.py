"""Endpoints serve synthesis requests behind one interface, so the flow never knows which one runs.

``local`` runs the container handler in-process; the SageMaker endpoint implements the same
interface. Tests and plugins add endpoints with :func:`register_endpoint`.
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


class Endpoint(Protocol):
    name: str

    def ensure(self) -> dict[str, Any]:
        """Create whatever is missing (idempotent); returns a description for logs."""
        ...

    def wake(self, deadline_seconds: float) -> None:
        """Have capacity to serve before the deadline, or raise TransientSynthesisError."""
        ...

    def submit(self, job: SynthesisJob) -> Submission: ...

    def fetch(self, submission: Submission, deadline_seconds: float) -> bytes:
        """The output body; raises SegmentRejected (final) or TransientSynthesisError."""
        ...

    def scale_down(self) -> None:
        """Release paid capacity now; safe to call at any time, any number of times."""
        ...


_factories: dict[str, Callable[[], Endpoint]] = {}
_instances: dict[str, Endpoint] = {}
_lock = threading.Lock()


def register_endpoint(name: str, factory: Callable[[], Endpoint]) -> None:
    with _lock:
        _factories[name] = factory
        _instances.pop(name, None)


def get_endpoint(name: str) -> Endpoint:
    """The process-wide instance of a named endpoint (a loaded model is kept between renders)."""
    with _lock:
        if name not in _instances:
            if name not in _factories:
                raise ConfigError(f"unknown backend {name!r}; use one of {', '.join(sorted(_factories))}")
            _instances[name] = _factories[name]()
        return _instances[name]


def _local() -> Endpoint:
    from narrate.endpoints.local import LocalEndpoint
    from narrate.settings import get_settings

    return LocalEndpoint(get_settings().state_dir / "local-endpoint")


register_endpoint("local", _local)
