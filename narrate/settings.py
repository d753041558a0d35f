"""The one settings object, read once from ``NARRATE_*`` environment variables (see ``.env.example``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NARRATE_", env_file=".env", extra="ignore")

    cache_dir: Path = Field(
        Path(".narrate/cache"),
        description="Content-addressed clip cache (one WAV per cache key). Safe to share between renders.",
    )
    state_dir: Path = Field(
        Path(".narrate/state"),
        description="Working area of the local endpoint (request, output and failure objects).",
    )
    renders_dir: Path = Field(
        Path("renders"), description="Default parent folder of render outputs (renders/<script name>/)."
    )
    backend: str = Field(
        "local", description="Which endpoint serves synthesis: 'local' runs the handler in-process."
    )
    max_segment_chars: int = Field(
        1500, ge=1, description="Longest segment text accepted by validation, in characters."
    )
    batch_size: int = Field(8, ge=1, le=256, description="Segments per synthesis request.")
    max_attempts: int = Field(
        3, ge=1, le=10, description="Attempts per segment for transient failures (first try included)."
    )
    retry_base_seconds: float = Field(
        1.0, ge=0, description="First back-off delay between synthesis attempts (doubles, with jitter)."
    )
    submit_concurrency: int = Field(4, ge=1, le=64, description="Requests in flight at once.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
