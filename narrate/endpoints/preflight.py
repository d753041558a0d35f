"""Before anything is created or woken: can the endpoint's container speak the voices a render asks
for? A voice whose request mode the configured engines and checkpoints do not serve would be refused
by every request of a woken, billing instance; here it is a ConfigError naming what to set."""

from __future__ import annotations

from collections.abc import Mapping

from model_server.config import ServerConfig
from narrate.endpoints.kind import EndpointKind, endpoint_for
from narrate.errors import ConfigError
from narrate.script import DevVoice, Engine, PiperVoice, PollyVoice, Voice, load_script
from narrate.settings import Settings
from narrate.synthesis.requests import QWEN_MODES, override_engine

# What to set for each mode the container lacks.
QWEN = "add qwen to NARRATE_ENGINES and set"
MODE_SETTINGS = {
    "dev": "add dev to NARRATE_ENGINES",
    "piper": "add piper to NARRATE_ENGINES",
    "custom_voice": f"{QWEN} NARRATE_QWEN_CUSTOM_VOICE_MODEL (a CustomVoice checkpoint)",
    "voice_clone": f"{QWEN} NARRATE_QWEN_BASE_MODEL (a Base checkpoint)",
    "voice_design": f"{QWEN} NARRATE_QWEN_VOICE_DESIGN_MODEL (a VoiceDesign checkpoint)",
}


def request_mode(voice: Voice) -> str | None:
    """The handler mode a voice is spoken in (None: not the container's, e.g. Polly)."""
    if isinstance(voice, PollyVoice):
        return None
    if isinstance(voice, DevVoice):
        return "dev"
    if isinstance(voice, PiperVoice):
        return "piper"
    return QWEN_MODES[Engine(voice.engine)]


def unserved_voices(voices: Mapping[str, Voice], server: ServerConfig) -> list[str]:
    """One line per voice the container cannot speak, with what to set."""
    served = server.served_modes()
    problems = []
    for name, voice in voices.items():
        mode = request_mode(voice)
        if mode is not None and mode not in served:
            serves = ", ".join(sorted(served)) or "nothing"
            problems.append(
                f"voice {name} ({voice.engine}) needs the {mode} mode, which the endpoint's configuration "
                f"does not serve (NARRATE_ENGINES={server.engines!r} serves {serves}): "
                f"{MODE_SETTINGS[mode]}, "
                "then `narrate deploy`"
            )
    return problems


def voices_asked(
    script: str, names: list[str], voice_engine: Engine | None, settings: Settings
) -> dict[str, Voice] | None:
    """The voices this run speaks, by name (the script's own voice as "voice"); None for an s3://
    script, which is read once the AWS is entered."""
    if script.startswith("s3://"):
        return None
    narration = load_script(script, max_segment_chars=settings.max_segment_chars)
    if names:
        return {name: narration.with_named_voice(name).voice for name in names}
    voice = narration.voice
    if voice_engine is not None:
        voice = override_engine(voice, Engine(voice_engine))
    return {"voice": voice}


def endpoints_for(
    voices: dict[str, Voice] | None, backend: EndpointKind, settings: Settings
) -> set[EndpointKind]:
    """The endpoints that speak these voices, once the container has been checked to serve the ones the
    backend speaks (before anything is created or woken); an s3:// script needs the AWS to be read."""
    if voices is None:
        return {backend, EndpointKind.POLLY}
    spoken = {name: v for name, v in voices.items() if endpoint_for(v.engine, backend) is backend}
    if problems := unserved_voices(spoken, settings.server_config()):
        raise ConfigError("; ".join(problems))
    return {endpoint_for(voice.engine, backend) for voice in voices.values()}
