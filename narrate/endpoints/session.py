"""The AWS a run's endpoints need, entered once at the run's boundary (a flow, a CLI command)."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext

from narrate.aws.mode import aws_session
from narrate.endpoints.kind import NEEDS_AWS, EndpointKind
from narrate.settings import Settings


def aws_for(endpoints: Iterable[EndpointKind], settings: Settings) -> AbstractContextManager[object]:
    """No AWS when every endpoint runs here (in-process); else the configured one (local or real)."""
    needed = set(endpoints)
    if not needed & NEEDS_AWS:
        return nullcontext()
    return aws_session(settings, sagemaker=EndpointKind.SAGEMAKER in needed)
