"""`.env.example` is where a person looks for what can be set: every setting is there."""

from __future__ import annotations

from pathlib import Path

from narrate.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_in_the_env_example() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    prefix = Settings.model_config.get("env_prefix", "")
    missing = [name for name in Settings.model_fields if f"{prefix}{name}=".upper() not in text.upper()]
    assert missing == [], f"add these to .env.example with their default and a word on each: {missing}"
