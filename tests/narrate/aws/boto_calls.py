"""Watching every call boto3's default session makes, for tests that check what AWS was asked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3


@contextmanager
def each_boto3_call(record: Callable[[str, str], None]) -> Iterator[None]:
    """``record(service, operation)`` for each call made meanwhile (service as botocore names it)."""

    def before_call(model: Any, **kwargs: Any) -> None:
        record(model.service_model.service_name, model.name)

    events = boto3._get_default_session().events
    events.register("before-call", before_call)
    try:
        yield
    finally:
        events.unregister("before-call", before_call)
