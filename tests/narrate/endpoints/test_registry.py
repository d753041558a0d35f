"""One live endpoint per settings and per AWS: a loaded model is kept, a new AWS gets a new client."""

from __future__ import annotations

from typing import Any

import pytest

from narrate.endpoints import get_endpoint, register_endpoint
from narrate.errors import ConfigError
from narrate.settings import Settings


class Built:
    name = "test-kind"


def test_an_instance_is_shared_until_the_settings_or_the_aws_change(monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[Any] = []
    register_endpoint("test-kind", lambda settings: builds.append(settings) or Built())
    first, other = Settings(), Settings()
    assert get_endpoint("test-kind", first) is get_endpoint("test-kind", first)
    assert len(builds) == 1
    get_endpoint("test-kind", other)
    assert len(builds) == 2
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")  # another embedded AWS started
    get_endpoint("test-kind", other)
    assert len(builds) == 3


def test_an_unknown_endpoint_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown endpoint 'nope'; use one of .*inprocess"):
        get_endpoint("nope", Settings())
