"""A real browser for the tests: Debian's Chromium (``.ci/run`` installs the ``chromium`` package when
it is missing; never a browser download), driven by Playwright, headless, with a fresh profile and the
flags that keep it off the network this machine does not have."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",  # a test plays audio without a click
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("Debian's chromium is not installed: apt-get install chromium (.ci/run does)")
    return path


@contextmanager
def chromium_page(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A page of a headless Chromium; closed, browser and all, after the body."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()
