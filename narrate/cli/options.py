"""What several commands share: the ``--aws`` option and the settings a command runs with."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from narrate.settings import Settings, get_settings

AWS_OPTION: dict[str, Any] = {
    "choices": ["local", "real"],
    "help": "local: embedded AWS on 127.0.0.1 (default NARRATE_AWS); real: your account",
}


@contextmanager
def settings_for(aws: str | None) -> Iterator[Settings]:
    """The settings of one command: ``--aws`` wins over NARRATE_AWS for the command's duration, in
    this process and in the flows it runs (they read the same settings at their boundary)."""
    if not aws:
        yield get_settings()
        return
    saved = os.environ.get("NARRATE_AWS")
    os.environ["NARRATE_AWS"] = aws
    get_settings.cache_clear()
    try:
        yield get_settings()
    finally:
        if saved is None:
            os.environ.pop("NARRATE_AWS", None)
        else:
            os.environ["NARRATE_AWS"] = saved
        get_settings.cache_clear()
