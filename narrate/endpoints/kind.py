"""The kinds of endpoint, and which one speaks a voice: the one home of the concept (settings, the
flows' parameters and the CLI's choices are all built from it)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal


class EndpointKind(StrEnum):
    """Which endpoint serves a request."""

    SAGEMAKER = "sagemaker"  # an Amazon SageMaker async endpoint (real AWS, or local mode's)
    INPROCESS = "inprocess"  # the container handler in this process: no AWS at all
    POLLY = "polly"  # Amazon Polly: serves Polly voices, whatever the backend


# The endpoints that serve the self-hosted voices: a render's ``backend`` is one of these.
Backend = Literal[EndpointKind.SAGEMAKER, EndpointKind.INPROCESS]
BACKENDS: tuple[EndpointKind, ...] = (EndpointKind.SAGEMAKER, EndpointKind.INPROCESS)
# Endpoints that need an AWS (the embedded one in local mode, your account with --aws real).
NEEDS_AWS = frozenset({EndpointKind.SAGEMAKER, EndpointKind.POLLY})


def endpoint_for(engine: str, backend: EndpointKind) -> EndpointKind:
    """The endpoint that speaks a voice engine: Polly's voices only Polly has; the rest the backend."""
    return EndpointKind.POLLY if engine == EndpointKind.POLLY.value else EndpointKind(backend)
