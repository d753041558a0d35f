"""The voices and languages the handler's engines accept: the single source for both sides."""

from __future__ import annotations

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


# Rate of the audio each request mode returns; outputs at any other rate are rejected.
NATIVE_SAMPLE_RATES: dict[str, int] = {
    "dev": 22050,
    "custom_voice": 24000,
    "voice_clone": 24000,
    "voice_design": 24000,
}
