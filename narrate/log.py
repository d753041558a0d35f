"""Prefect's run logger inside a flow or task run (shown in the UI), a plain logger outside one.

Prefect is imported on first use, not with this module: the CLI's errors before a render starts
(an invalid script, a voice the endpoint cannot speak) come back in well under a second.
"""

from __future__ import annotations

import logging
from typing import Any


def run_logger(name: str = "narrate") -> logging.Logger | logging.LoggerAdapter[Any]:
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(name)
