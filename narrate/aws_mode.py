"""Choosing where AWS is: the embedded local AWS (default) or your real account."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Literal

from narrate.endpoints import reset_endpoints
from narrate.settings import Settings, get_settings

AWS_BACKENDS = frozenset({"sagemaker", "polly"})


def aws_for(backend: str, mode: Literal["local", "real"] | None = None) -> AbstractContextManager[object]:
    """The AWS a render on ``backend`` needs: none in-process; else the configured (or given) one.
    Inside a running embedded AWS (the CLI's, the tests') it joins that one."""
    if backend not in AWS_BACKENDS:
        return nullcontext()
    return aws_session(mode, sagemaker=backend == "sagemaker")


def aws_for_endpoint(backend: str, endpoint: str) -> AbstractContextManager[object]:
    """The AWS ``endpoint`` needs inside a render on ``backend`` (a Polly voice on the in-process
    backend); none when the backend's own session already provides it."""
    return nullcontext() if backend in AWS_BACKENDS else aws_for(endpoint)


@contextmanager
def aws_session(mode: Literal["local", "real"] | None = None, sagemaker: bool = True) -> Iterator[Settings]:
    """For ``local``, start the embedded AWS for the duration and point boto3 at it. ``real`` with
    ``sagemaker`` refuses the local placeholders of the bucket and the endpoint's role."""
    settings = get_settings()
    mode = mode or settings.aws
    if mode == "real":
        from narrate.endpoints.sagemaker_setup import require_real_configuration

        if sagemaker:
            require_real_configuration(settings)
        context = nullcontext()
    else:
        from narrate.localaws import EmulatorOptions, local_aws

        options = EmulatorOptions(
            cold_start_seconds=settings.local_cold_start_seconds,
            time_scale=settings.local_time_scale,
            fault_file=str(settings.local_fault_file) if settings.local_fault_file else None,
        )
        context = local_aws(options)  # type: ignore[assignment]
    with context:
        reset_endpoints()  # built against this AWS, not a previous one
        try:
            yield settings
        finally:
            reset_endpoints()
