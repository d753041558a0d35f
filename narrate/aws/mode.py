"""Where AWS is for a run: the embedded AWS of local mode (the default) or your real account.

Entered once, at the boundary of a run (a flow, an endpoint command of the CLI); everything below
reaches AWS through boto3's standard configuration and never asks which one it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from narrate.errors import ConfigError
from narrate.settings import Settings


@contextmanager
def aws_session(settings: Settings, sagemaker: bool = True) -> Iterator[Settings]:
    """For ``local``, start the embedded AWS for the duration and point boto3 at it (inside a
    running one, the tests', join it). ``real`` with ``sagemaker`` refuses the local placeholders of
    the bucket and the endpoint's role."""
    if settings.aws == "real":
        if sagemaker:
            require_real_configuration(settings)
        yield settings
        return
    from narrate.aws.local import EmulatorOptions, local_aws
    from narrate.aws.local.faults import fault_file_from_environment

    options = EmulatorOptions(
        cold_start_seconds=settings.local_cold_start_seconds,
        time_scale=settings.local_time_scale,
        fault_file=fault_file_from_environment(),
    )
    with local_aws(options, lazy=True):
        yield settings


def require_real_configuration(settings: Settings) -> None:
    """Refuse the placeholder defaults that only make sense against the embedded AWS."""
    defaults = Settings.model_fields
    missing = [
        f"NARRATE_{name.upper()}"
        for name in ("bucket", "role_arn")
        if getattr(settings, name) == defaults[name].default
    ]
    if missing:
        raise ConfigError(f"--aws real needs your own {' and '.join(missing)} (see .env.example)")
