"""The engines a script's voice can name (a leaf: the script, its errors and the endpoints share it)."""

from __future__ import annotations

from enum import StrEnum


class Engine(StrEnum):
    QWEN_SPEAKER = "qwen-speaker"
    QWEN_CLONE = "qwen-clone"
    QWEN_DESIGN = "qwen-design"
    POLLY = "polly"
    PIPER = "piper"
    DEV = "dev"
