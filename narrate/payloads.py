"""How a script's voice becomes a handler request, and which of its fields decide the sound.

The request a segment is synthesised with and its cache key are built from the same fields here,
so the key cannot miss a setting that changes the audio.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from model_server.config import DEFAULT_MODELS, checkpoint_identity
from model_server.voices import DEV_VOICES
from narrate.errors import ConfigError
from narrate.polly import EMULATION_NOTE
from narrate.polly import SAMPLE_RATE as POLLY_SAMPLE_RATE
from narrate.script import (
    DevVoice,
    Engine,
    GenerationSettings,
    PollyVoice,
    QwenCloneVoice,
    QwenDesignVoice,
    QwenSpeakerVoice,
    Voice,
)
from narrate.settings import get_settings
from narrate.storage import file_sha256

QWEN_MODES: dict[Engine, str] = {
    Engine.QWEN_SPEAKER: "custom_voice",
    Engine.QWEN_CLONE: "voice_clone",
    Engine.QWEN_DESIGN: "voice_design",
}


@dataclass(frozen=True)
class ModelIdentity:
    model_id: str
    revision: str


def model_identity(voice: Voice) -> ModelIdentity:
    """The model (and its version) that produces this voice: part of every cache key."""
    if isinstance(voice, DevVoice):
        return ModelIdentity("espeak-ng", f"espeakng-loader-{version('espeakng-loader')}")
    if isinstance(voice, PollyVoice):
        if polly_emulated():
            espeak = f"espeakng-loader-{version('espeakng-loader')}"
            return ModelIdentity("aws-polly-emulated", f"{voice.polly_engine}; dev voice {espeak}")
        return ModelIdentity("aws-polly", voice.polly_engine)
    mode = QWEN_MODES[voice.engine]
    source = get_settings().server_config().qwen_sources(".").get(mode, DEFAULT_MODELS[mode])
    return ModelIdentity(*checkpoint_identity(source))


def polly_emulated() -> bool:
    """Whether Polly voices are served by the dev voice: in local mode the embedded AWS answers
    SynthesizeSpeech, and that audio must never pass for Polly's (it has a cache key of its own)."""
    return get_settings().aws == "local"


def emulation_note(voice: Voice) -> str | None:
    """What stood in for the voice's real engine, for the manifest, timeline and disclosure; None
    when nothing did."""
    return EMULATION_NOTE if isinstance(voice, PollyVoice) and polly_emulated() else None


def voice_sound_fields(voice: Voice) -> dict[str, Any]:
    """Every voice field that changes the audio; a reference clip counts by its content hash."""
    if isinstance(voice, DevVoice):
        return {"voice": DEV_VOICES[voice.language], "rate_wpm": voice.rate_wpm, "pitch": voice.pitch}
    if isinstance(voice, QwenSpeakerVoice):
        return {"speaker": voice.speaker, "instruct": voice.instruct, "language": voice.language}
    if isinstance(voice, QwenCloneVoice):
        return {
            "reference_sha256": file_sha256(voice.reference_clip),
            "reference_text": None if voice.x_vector_only else voice.reference_text,
            "x_vector_only": voice.x_vector_only,
            "language": voice.language,
        }
    if isinstance(voice, QwenDesignVoice):
        return {"design_prompt": voice.design_prompt, "language": voice.language}
    return {
        "voice_id": voice.voice_id,
        "language_code": voice.language_code,
        "text_type": voice.text_type,
        "sample_rate": POLLY_SAMPLE_RATE,
        "emulated": polly_emulated(),
    }


def generation_sound_fields(voice: Voice, generation: GenerationSettings) -> dict[str, Any]:
    """Sampling settings matter only to the sampling (Qwen) engines."""
    if isinstance(voice, DevVoice | PollyVoice):
        return {}
    return generation.model_dump()


def voice_request(voice: Voice) -> dict[str, Any]:
    """The ``voice`` object of a batch request: to the handler, or (mode ``polly``) to the Polly
    endpoint, which the handler's allow-list of modes refuses."""
    if isinstance(voice, DevVoice):
        return {"mode": "dev", "language": voice.language, "rate_wpm": voice.rate_wpm, "pitch": voice.pitch}
    if isinstance(voice, QwenSpeakerVoice):
        request = {"mode": "custom_voice", "speaker": voice.speaker, "language": voice.language}
        return request | ({"instruct": voice.instruct} if voice.instruct else {})
    if isinstance(voice, QwenCloneVoice):
        return {
            "mode": "voice_clone",
            "language": voice.language,
            "ref_audio": base64.b64encode(voice.reference_clip.read_bytes()).decode(),
            "ref_text": None if voice.x_vector_only else voice.reference_text,
            "x_vector_only": voice.x_vector_only,
        }
    if isinstance(voice, QwenDesignVoice):
        return {"mode": "voice_design", "instruct": voice.design_prompt, "language": voice.language}
    return {
        "mode": "polly",
        "voice_id": voice.voice_id,
        "engine": voice.polly_engine,
        "language_code": voice.language_code,
        "text_type": voice.text_type,
        "emulated": polly_emulated(),
    }


def override_engine(voice: Voice, engine: Engine) -> Voice:
    """The voice ``--voice-engine`` asks for, keeping the script's language where it can."""
    if voice.engine == engine:
        return voice
    language = getattr(voice, "language", "english")
    if engine is Engine.DEV:
        return DevVoice(language=language)
    if engine is Engine.QWEN_SPEAKER:
        return QwenSpeakerVoice(speaker="aiden", language=language)
    raise ConfigError(
        f"--voice-engine {engine.value} needs settings of its own (reference clip, prompt or voice id); "
        "define that voice in the script instead"
    )
