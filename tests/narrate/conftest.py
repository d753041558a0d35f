"""Fixtures of the library's tests."""

from tests.narrate.polly_stub import polly

__all__ = ["polly"]
