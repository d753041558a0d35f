"""How a script's voice becomes an endpoint request, and which of its fields decide the sound.

The request a segment is synthesised with and its cache key are built from the same fields here,
so the key cannot miss a setting that changes the audio. Nothing here reads settings: the model
identity (which checkpoint, which Polly) is worked out once per render, at the boundary, and passed.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, Literal

from model_server.config import DEFAULT_MODELS, ServerConfig, checkpoint_identity
from model_server.protocol import (
    BatchRequest,
    CustomVoiceRequest,
    DevVoiceRequest,
    PiperSettings,
    PiperVoiceRequest,
    SegmentRequest,
    VoiceCloneRequest,
    VoiceDesignRequest,
)
from model_server.voices import DEV_VOICES, piper_revision
from narrate.errors import ConfigError
from narrate.files import file_sha256
from narrate.script import (
    DevVoice,
    Engine,
    GenerationSettings,
    PiperVoice,
    PollyVoice,
    QwenCloneVoice,
    QwenDesignVoice,
    QwenSpeakerVoice,
    Voice,
)
from narrate.synthesis.polly_speech import EMULATION_NOTE, PollyBatchRequest, PollyVoiceRequest
from narrate.synthesis.polly_speech import SAMPLE_RATE as POLLY_SAMPLE_RATE

QWEN_MODES: dict[Engine, str] = {
    Engine.QWEN_SPEAKER: "custom_voice",
    Engine.QWEN_CLONE: "voice_clone",
    Engine.QWEN_DESIGN: "voice_design",
}
HandlerVoice = (
    DevVoiceRequest | PiperVoiceRequest | CustomVoiceRequest | VoiceCloneRequest | VoiceDesignRequest
)


@dataclass(frozen=True)
class ModelIdentity:
    """The model (and its version) that produces a voice: part of every cache key. ``emulated`` says
    what stood in for the real engine (local mode's Polly), None when nothing did."""

    model_id: str
    revision: str
    emulated: str | None = None


def model_identity(voice: Voice, server: ServerConfig, aws: Literal["local", "real"]) -> ModelIdentity:
    """Which model speaks ``voice`` for a container configured as ``server``, in AWS mode ``aws``.

    In local mode the embedded AWS answers Polly's SynthesizeSpeech with the dev voice, and that audio
    must never pass for Polly's: it has a model id (and so cache keys) of its own.
    """
    if isinstance(voice, DevVoice):
        return ModelIdentity("espeak-ng", f"espeakng-loader-{version('espeakng-loader')}")
    if isinstance(voice, PiperVoice):
        return ModelIdentity("piper", piper_revision(voice.voice_model))
    if isinstance(voice, PollyVoice):
        if aws == "local":
            espeak = f"espeakng-loader-{version('espeakng-loader')}"
            return ModelIdentity(
                "aws-polly-emulated", f"{voice.polly_engine}; dev voice {espeak}", EMULATION_NOTE
            )
        return ModelIdentity("aws-polly", voice.polly_engine)
    mode = QWEN_MODES[voice.engine]
    source = server.qwen_sources(".").get(mode, DEFAULT_MODELS[mode])
    return ModelIdentity(*checkpoint_identity(source))


def voice_sound_fields(voice: Voice, identity: ModelIdentity) -> dict[str, Any]:
    """Every voice field that changes the audio; a reference clip counts by its content hash."""
    if isinstance(voice, DevVoice):
        return {"voice": DEV_VOICES[voice.language], "rate_wpm": voice.rate_wpm, "pitch": voice.pitch}
    if isinstance(voice, PiperVoice):
        return _piper_settings(voice).model_dump()
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
        "emulated": identity.emulated is not None,
    }


def generation_sound_fields(voice: Voice, generation: GenerationSettings) -> dict[str, Any]:
    """Sampling settings matter only to the sampling engines: all of them to Qwen's, the seed (which
    take) to Piper's."""
    if isinstance(voice, DevVoice | PollyVoice):
        return {}
    if isinstance(voice, PiperVoice):
        return {"seed": generation.seed}
    return generation.model_dump()


def voice_request(voice: Voice, identity: ModelIdentity) -> HandlerVoice | PollyVoiceRequest:
    """The ``voice`` of a batch request: to the handler, or (mode ``polly``) to the Polly endpoint,
    which the handler's allow-list of modes refuses."""
    if isinstance(voice, DevVoice):
        return DevVoiceRequest(
            mode="dev", language=voice.language, rate_wpm=voice.rate_wpm, pitch=voice.pitch
        )
    if isinstance(voice, PiperVoice):
        return PiperVoiceRequest(mode="piper", **_piper_settings(voice).model_dump())
    if isinstance(voice, QwenSpeakerVoice):
        return CustomVoiceRequest(
            mode="custom_voice", speaker=voice.speaker, language=voice.language, instruct=voice.instruct
        )
    if isinstance(voice, QwenCloneVoice):
        return VoiceCloneRequest(
            mode="voice_clone",
            language=voice.language,
            ref_audio=base64.b64encode(voice.reference_clip.read_bytes()).decode(),
            ref_text=None if voice.x_vector_only else voice.reference_text,
            x_vector_only=voice.x_vector_only,
        )
    if isinstance(voice, QwenDesignVoice):
        return VoiceDesignRequest(mode="voice_design", instruct=voice.design_prompt, language=voice.language)
    return PollyVoiceRequest(
        voice_id=voice.voice_id,
        engine=voice.polly_engine,
        language_code=voice.language_code,
        text_type=voice.text_type,
        emulated=identity.emulated is not None,
    )


def _piper_settings(voice: PiperVoice) -> PiperSettings:
    """The fields the script's piper voice shares with the request (all of them decide the sound)."""
    return PiperSettings.model_validate(voice.model_dump(exclude={"engine"}))


def batch_request(
    voice: HandlerVoice | PollyVoiceRequest,
    segments: Sequence[tuple[str, str]],
    generation: GenerationSettings,
) -> BatchRequest | PollyBatchRequest:
    """One request for these (id, text) segments in one voice."""
    items = [SegmentRequest(id=segment_id, text=text) for segment_id, text in segments]
    if isinstance(voice, PollyVoiceRequest):
        return PollyBatchRequest(voice=voice, segments=items, generation=generation)
    return BatchRequest(voice=voice, segments=items, generation=generation)


def override_engine(voice: Voice, engine: Engine) -> Voice:
    """The voice ``--voice-engine`` asks for, keeping the script's language where it can."""
    if voice.engine == engine:
        return voice
    language = getattr(voice, "language", "english")
    if engine is Engine.DEV:
        return DevVoice(language=language)
    if engine is Engine.PIPER:
        return PiperVoice(language=language)
    if engine is Engine.QWEN_SPEAKER:
        return QwenSpeakerVoice(speaker="aiden", language=language)
    raise ConfigError(
        f"--voice-engine {engine.value} needs settings of its own (reference clip, prompt or voice id); "
        "define that voice in the script instead"
    )
