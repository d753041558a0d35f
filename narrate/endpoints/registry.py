"""One live instance of each endpoint, shared by every task of a process.

Sharing matters: the in-process endpoint keeps its loaded model between renders, and the SageMaker
endpoint knows which renders of this process hold it. An instance is built for one settings object
and one AWS (boto3's ``AWS_ENDPOINT_URL``: the embedded AWS of local mode has a new one each time it
starts), and built again when either changes. Tests and plugins add endpoints with
:func:`register_endpoint`; :func:`reset_endpoints` forgets the built ones.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from narrate.endpoints.base import Endpoint
from narrate.endpoints.kind import EndpointKind
from narrate.errors import ConfigError

if TYPE_CHECKING:
    from narrate.settings import Settings

EndpointFactory = Callable[["Settings"], Endpoint]

_factories: dict[str, EndpointFactory] = {}
_instances: dict[str, tuple[Settings, str | None, Endpoint]] = {}
_lock = threading.Lock()


def register_endpoint(name: str, factory: EndpointFactory) -> None:
    with _lock:
        _factories[name] = factory
        _instances.pop(name, None)


def reset_endpoints() -> None:
    with _lock:
        _instances.clear()


def get_endpoint(name: str, settings: Settings) -> Endpoint:
    """The instance of a named endpoint built from these settings (built on first use)."""
    aws = os.environ.get("AWS_ENDPOINT_URL")
    with _lock:
        built = _instances.get(name)
        if built is None or built[0] is not settings or built[1] != aws:
            if name not in _factories:
                known = ", ".join(sorted(_factories))
                raise ConfigError(f"unknown endpoint {name!r}; use one of {known}")
            built = (settings, aws, _factories[name](settings))
            _instances[name] = built
        return built[2]


def _inprocess(settings: Settings) -> Endpoint:
    from narrate.endpoints.inprocess import InProcessEndpoint

    return InProcessEndpoint(settings.state_dir / "inprocess-endpoint", settings.server_config())


def _sagemaker(settings: Settings) -> Endpoint:
    from narrate.endpoints.sagemaker import SageMakerEndpoint

    return SageMakerEndpoint(settings)


def _polly(settings: Settings) -> Endpoint:
    from narrate.aws.clients import AwsClients
    from narrate.endpoints.polly import PollyEndpoint

    return PollyEndpoint(AwsClients(settings.region).polly)


register_endpoint(EndpointKind.INPROCESS, _inprocess)
register_endpoint(EndpointKind.POLLY, _polly)
register_endpoint(EndpointKind.SAGEMAKER, _sagemaker)
