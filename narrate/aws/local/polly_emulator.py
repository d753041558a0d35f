"""Local mode's Amazon Polly: SynthesizeSpeech answered by the dev voice, and marked as such.

moto checks a few parameters and answers eight zero bytes. Here the embedded AWS refuses what Polly
refuses where narrate depends on it (an unknown voice, an engine the voice lacks in moto's voice list,
a PCM rate other than 8000/16000, text over the request limits, malformed SSML), speaks the text with
eSpeak NG at the asked rate, and adds the ``x-narrate-emulated`` header, so narrate's real Polly code
path runs offline and its outputs say they are emulated.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any
from xml.etree import ElementTree

import numpy as np

from model_server.voices import DEV_VOICES, normalize_language
from narrate.synthesis.polly_speech import (
    EMULATED_HEADER,
    EMULATION_NOTE,
    MAX_BILLED_CHARS,
    MAX_TOTAL_CHARS,
    PCM_DTYPE,
    billed_chars,
    plain_text,
)
from narrate.track.audio import resample

log = logging.getLogger("narrate.aws.local")

PCM_RATES = ("8000", "16000")
DEV_RATE_WPM = 165
DEV_PITCH = 50


class PollyError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class PollyEmulator:
    """Speaks SynthesizeSpeech requests with the dev voice; loads eSpeak NG on first use."""

    def __init__(self) -> None:
        self._engine: Any = None
        self._lock = threading.Lock()
        self._throttle = 0
        self.calls = 0
        self._warned = False

    def throttle_next(self, count: int) -> None:
        """Answer the next ``count`` calls with ThrottlingException, as Polly does over its rate."""
        with self._lock:
            self._throttle = count

    def synthesize(self, request: dict[str, Any], voices: list[dict[str, Any]]) -> bytes:
        """PCM bytes for a SynthesizeSpeech body; raises PollyError as Polly would answer it."""
        with self._lock:
            self.calls += 1
            if self._throttle > 0:
                self._throttle -= 1
                raise PollyError("ThrottlingException", "Rate exceeded")
        voice = _check(request, voices)
        if not self._warned:
            log.warning(
                "%s: voice %s is spoken by eSpeak NG, not by Amazon Polly", EMULATION_NOTE, voice["Id"]
            )
            self._warned = True
        text = plain_text(" ".join(str(request["Text"]).split()), request.get("TextType", "text"))
        language = request.get("LanguageCode") or voice["LanguageCode"]
        audio = self._speaker().speak(text, _espeak_voice(language), DEV_RATE_WPM, DEV_PITCH)
        rate = int(request.get("SampleRate", "16000"))
        samples = resample(audio, self._speaker().sample_rate, rate)
        return np.clip(np.round(samples * 32768.0), -32768, 32767).astype(PCM_DTYPE).tobytes()

    def _speaker(self) -> Any:
        with self._lock:
            if self._engine is None:
                from model_server.engines.espeak import EspeakEngine

                self._engine = EspeakEngine()
            return self._engine

    def close(self) -> None:
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()


def _check(request: dict[str, Any], voices: list[dict[str, Any]]) -> dict[str, Any]:
    for name in ("OutputFormat", "Text", "VoiceId"):
        if name not in request:
            raise PollyError("ValidationException", f"1 validation error detected: {name} is required")
    voice_id = request["VoiceId"]
    voice = next((v for v in voices if v["Id"] == voice_id), None)
    if voice is None:
        raise PollyError(
            "ValidationException",
            f"1 validation error detected: Value '{voice_id}' at 'voiceId' failed to satisfy constraint: "
            "Member must satisfy enum value set",
        )
    engine = request.get("Engine", "standard")
    if engine not in voice.get("SupportedEngines", []):
        raise PollyError(
            "EngineNotSupportedException",
            f"This voice does not support the selected engine: {engine} (the embedded AWS's voice list "
            f"gives {voice_id}: {', '.join(voice.get('SupportedEngines', []))})",
        )
    codes = {v["LanguageCode"] for v in voices} | {
        c for v in voices for c in v.get("AdditionalLanguageCodes", [])
    }
    language = request.get("LanguageCode")
    if language is not None and language not in codes:
        raise PollyError(
            "ValidationException",
            f"1 validation error detected: Value '{language}' at 'languageCode' failed to satisfy constraint",
        )
    if request["OutputFormat"] != "pcm":
        raise PollyError("ValidationException", "the embedded AWS's Polly answers OutputFormat pcm only")
    if str(request.get("SampleRate", "16000")) not in PCM_RATES:
        raise PollyError("InvalidSampleRateException", "The specified sample rate is not valid.")
    text, text_type = str(request["Text"]), request.get("TextType", "text")
    if len(text) > MAX_TOTAL_CHARS or billed_chars(text, text_type) > MAX_BILLED_CHARS:
        raise PollyError("TextLengthExceededException", "Maximum text length has been exceeded")
    if text_type == "ssml":
        try:
            ElementTree.fromstring(text)
        except ElementTree.ParseError as exc:
            raise PollyError("InvalidSsmlException", f"Invalid SSML request: {exc}") from None
    return voice


def _espeak_voice(language_code: str) -> str:
    try:
        return DEV_VOICES[normalize_language(language_code)]
    except ValueError:
        return DEV_VOICES["english"]


def speech_response(emulator: PollyEmulator, body: bytes, voices: list[dict[str, Any]]) -> Any:
    """moto's (status, headers, body) for one SynthesizeSpeech request."""
    try:
        request = json.loads(body or b"{}")
        pcm = emulator.synthesize(request, voices)
    except PollyError as exc:
        headers = {"status": str(exc.status), "x-amzn-ErrorType": exc.code}
        return exc.status, headers, json.dumps({"__type": exc.code, "message": exc.message})
    except (ValueError, TypeError) as exc:
        headers = {"status": "400", "x-amzn-ErrorType": "ValidationException"}
        return 400, headers, json.dumps({"__type": "ValidationException", "message": str(exc)})
    return 200, {"Content-Type": "audio/pcm", EMULATED_HEADER: "dev-voice"}, pcm
