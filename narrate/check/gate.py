"""The quality gate: every take of every clip measured, then judged, before a render uses it.

A take is measured once, where its audio is: here (the flow) its speaking time against what its text
needs, its longest pause, clipping, level and, for a sampling engine in a language the offline
recogniser knows, how many of its words were heard; in the handler, whether generation stopped at its
frame cap and, for a clone, how like the reference clip it sounds. The measures are kept in the clip
cache's note beside the clip, so a later render judges a cached take without measuring it again, and
changing a bound (``NARRATE_GATE_*``) re-judges every take without re-synthesising any.
"""

from __future__ import annotations

import math
import threading
import unicodedata
from collections.abc import Mapping
from enum import StrEnum
from functools import lru_cache
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from narrate.check.recogniser import PocketSphinx, Recogniser
from narrate.check.words import align_words, plain_words
from narrate.errors import ConfigError
from narrate.settings import Settings
from narrate.track.audio import ABSOLUTE_GATE_LUFS, integrated_loudness, voiced_windows

# Ordinary speaking rates: about 14 Latin characters a second, 4 CJK characters (each a syllable).
CHARS_PER_SECOND = 14.0
WIDE_CHARS_PER_SECOND = 4.0
DURATION_SLACK_SECONDS = 1.0  # a short text's take may be longer than its ratio alone allows
FULL_SCALE = 0.999  # a sample at or above this (absolute) is at the converter's limit
CLIPPED_RUN = 3  # this many full-scale samples in a row are clipping, not one peak that touched it
SAMPLING_MODES = frozenset({"piper", "custom_voice", "voice_clone", "voice_design"})
# The default rate of each engine that has a rate setting, so a take is expected at the voice's own pace.
DEFAULT_RATE_WPM = 165


class Check(StrEnum):
    DURATION = "duration"
    SILENCE = "silence"
    CLIPPING = "clipping"
    LEVEL = "level"
    FRAME_CAP = "frame_cap"
    SIMILARITY = "similarity"
    WORDS = "words"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SpeakingPace(_Frozen):
    """What a request says about how its takes should sound: language, pace and intended pauses."""

    mode: str
    language: str | None
    pace: float = 1.0  # 2.0: twice the ordinary speaking rate
    pause_allowance_seconds: float = 0.0  # silence the voice puts between sentences on purpose

    @property
    def sampling(self) -> bool:
        """Another seed gives another take: re-rolling can help."""
        return self.mode in SAMPLING_MODES

    @classmethod
    def of_request(cls, voice: Mapping[str, Any]) -> SpeakingPace:
        """From the voice of the request that made the take (a JobSummary's voice)."""
        mode = str(voice.get("mode", ""))
        language = voice.get("language")
        if mode == "polly":
            code = str(voice.get("language_code") or "")
            language = "english" if code.startswith("en") else None
        pace, pauses = 1.0, 0.0
        if mode == "dev":
            pace = float(voice.get("rate_wpm", DEFAULT_RATE_WPM)) / DEFAULT_RATE_WPM
        elif mode == "piper":
            pace = 1.0 / float(voice.get("length_scale", 1.0))
            pauses = float(voice.get("sentence_silence", 0.0))
        return cls(mode=mode, language=language, pace=pace, pause_allowance_seconds=pauses)


class TakeMeasures(_Frozen):
    """What was measured of one take; None where a measure does not apply or could not be made."""

    speech_seconds: float  # from the first sound to the last
    expected_seconds: float  # what the text takes at the voice's pace
    longest_pause_seconds: float  # the longest silence inside the speech
    clipped_share: float  # of the samples, those in runs at full scale
    loudness_lufs: float | None  # None: too short to measure
    hit_frame_limit: bool = False
    speaker_similarity: float | None = None  # clones: cosine of the take's and the reference's embedding
    words_heard: float | None = None  # share of the text's words the recogniser heard
    word_error_rate: float | None = None
    heard: str | None = None


class GateBounds(_Frozen):
    """Which checks run, and where each one passes; every bound is a NARRATE_GATE_* setting."""

    checks: frozenset[Check]
    min_duration_ratio: float
    max_duration_ratio: float
    max_pause_seconds: float
    max_clipped_share: float
    min_lufs: float
    max_lufs: float
    min_similarity: float
    min_words_heard: float

    @classmethod
    def from_settings(cls, settings: Settings) -> GateBounds:
        """The bounds NARRATE_GATE_* set; ConfigError naming a check the gate does not know."""
        names = [n.strip() for n in settings.gate_checks.split(",") if n.strip()]
        names = [] if names == ["none"] else names
        unknown = [n for n in names if n not in set(Check)]
        if unknown:
            known = ", ".join(Check)
            raise ConfigError(
                f"NARRATE_GATE_CHECKS: unknown check(s) {', '.join(unknown)}; use some of {known}, or none"
            )
        return cls(
            checks=frozenset(Check(n) for n in names),
            min_duration_ratio=settings.gate_min_duration_ratio,
            max_duration_ratio=settings.gate_max_duration_ratio,
            max_pause_seconds=settings.gate_max_pause_seconds,
            max_clipped_share=settings.gate_max_clipped_share,
            min_lufs=settings.gate_min_lufs,
            max_lufs=settings.gate_max_lufs,
            min_similarity=settings.gate_min_similarity,
            min_words_heard=settings.gate_min_words_heard,
        )

    def recogniser_for(self, pace: SpeakingPace) -> Recogniser | None:
        """The recogniser that hears this voice's takes: for a sampling engine (a rule-based voice says
        every word the same way each time; the recogniser hears too little of eSpeak's to judge it), in
        a language it knows, when the words check is on."""
        return shared_recogniser() if self.hears_words(pace) else None

    def hears_words(self, pace: SpeakingPace) -> bool:
        """Whether this voice's takes are heard (without loading the recogniser: 0.5-6 s)."""
        return Check.WORDS in self.checks and pace.sampling and pace.language in PocketSphinx.languages


class CheckResult(_Frozen):
    value: float | bool | None
    bound: str
    passed: bool | None  # None: not measured for this take (the check does not apply)
    excess: float = 0.0  # how far past its bound, relative to the bound: orders failed takes


class Verdict(_Frozen):
    passed: bool
    checks: dict[str, CheckResult]

    @property
    def failed(self) -> list[str]:
        return [name for name, result in self.checks.items() if result.passed is False]

    @property
    def badness(self) -> tuple[int, float]:
        """Smaller is better: how many checks failed, then by how much."""
        return len(self.failed), round(sum(r.excess for r in self.checks.values()), 6)

    def summary(self) -> str:
        if self.passed:
            return "passed"
        checks = self.checks
        return "; ".join(f"{name} {checks[name].value} (bound {checks[name].bound})" for name in self.failed)


def expected_seconds(text: str, pace: float = 1.0) -> float:
    """How long ``text`` takes to say at the ordinary rate times ``pace``."""
    wide = sum(1 for ch in text if unicodedata.east_asian_width(ch) in "WF")
    return (wide / WIDE_CHARS_PER_SECOND + (len(text) - wide) / CHARS_PER_SECOND) / max(pace, 1e-3)


def measure_take(
    audio: np.ndarray,
    rate: int,
    text: str,
    pace: SpeakingPace,
    handler: Mapping[str, Any],
    recogniser: Recogniser | None = None,
) -> TakeMeasures:
    """Every measure of one take; ``handler`` holds what the handler measured (``hit_frame_limit``,
    ``speaker_similarity``); ``recogniser`` (when given) hears the words."""
    voiced, window = voiced_windows(audio, rate)
    if voiced.size:
        speech = (voiced[-1] + 1 - voiced[0]) * window / rate
        gaps = np.diff(voiced) - 1
        longest_pause = float(gaps.max(initial=0)) * window / rate
    else:
        speech, longest_pause = 0.0, 0.0
    loudness = integrated_loudness(audio, rate) if len(audio) >= rate // 2 else math.nan
    if loudness == -math.inf:  # every block under BS.1770's absolute gate: that quiet, at most
        loudness = ABSOLUTE_GATE_LUFS
    heard = words_heard = wer = None
    if recogniser is not None:
        heard = recognise(recogniser, audio, rate)
        alignment = align_words(plain_words(text), plain_words(heard))
        words_heard, wer = round(alignment.words_heard, 4), round(alignment.word_error_rate, 4)
    similarity = handler.get("speaker_similarity")
    return TakeMeasures(
        speech_seconds=round(speech, 3),
        expected_seconds=round(expected_seconds(text, pace.pace), 3),
        longest_pause_seconds=round(longest_pause, 3),
        clipped_share=round(clipped_share(audio), 6),
        loudness_lufs=round(loudness, 2) if math.isfinite(loudness) else None,
        hit_frame_limit=bool(handler.get("hit_frame_limit", False)),
        speaker_similarity=None if similarity is None else round(float(similarity), 4),
        words_heard=words_heard,
        word_error_rate=wer,
        heard=heard,
    )


def clipped_share(audio: np.ndarray) -> float:
    """The share of samples that sit in runs of CLIPPED_RUN or more at full scale."""
    at_limit = np.abs(audio) >= FULL_SCALE
    if not at_limit.any():
        return 0.0
    edges = np.diff(np.concatenate(([0], at_limit.view(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    lengths = ends - starts
    return float(lengths[lengths >= CLIPPED_RUN].sum()) / len(audio)


def judge(measures: TakeMeasures, pace: SpeakingPace, bounds: GateBounds) -> Verdict:
    """Each enabled check of one take against its bound."""
    results: dict[str, CheckResult] = {}
    on = bounds.checks
    if Check.DURATION in on:
        low = bounds.min_duration_ratio * measures.expected_seconds
        high = bounds.max_duration_ratio * measures.expected_seconds + DURATION_SLACK_SECONDS
        results[Check.DURATION] = _within(measures.speech_seconds, low, high, f"{low:.2f}-{high:.2f} s")
    if Check.SILENCE in on:
        allowed = bounds.max_pause_seconds + pace.pause_allowance_seconds
        results[Check.SILENCE] = _within(measures.longest_pause_seconds, None, allowed, f"<= {allowed:g} s")
    if Check.CLIPPING in on:
        limit = bounds.max_clipped_share
        results[Check.CLIPPING] = _within(measures.clipped_share, None, limit, f"<= {limit:g}", absolute=1e-4)
    if Check.LEVEL in on:
        bound = f"{bounds.min_lufs:g} to {bounds.max_lufs:g} LUFS"
        results[Check.LEVEL] = _within(measures.loudness_lufs, bounds.min_lufs, bounds.max_lufs, bound)
    if Check.FRAME_CAP in on:
        capped = measures.hit_frame_limit
        results[Check.FRAME_CAP] = CheckResult(
            value=capped, bound="stops before its cap", passed=not capped, excess=float(capped)
        )
    if Check.SIMILARITY in on:
        bound = f">= {bounds.min_similarity:g}"
        results[Check.SIMILARITY] = _within(measures.speaker_similarity, bounds.min_similarity, None, bound)
    if Check.WORDS in on:
        bound = f">= {bounds.min_words_heard:g} of the words heard"
        results[Check.WORDS] = _within(measures.words_heard, bounds.min_words_heard, None, bound)
    passed = all(result.passed is not False for result in results.values())
    return Verdict(passed=passed, checks={str(k): v for k, v in results.items()})


def _within(
    value: float | None, low: float | None, high: float | None, bound: str, absolute: float = 0.0
) -> CheckResult:
    if value is None:
        return CheckResult(value=None, bound=bound, passed=None)
    excess = 0.0
    if low is not None and value < low:
        excess = (low - value) / max(abs(low), 1.0)
    if high is not None and value > high:
        excess = (value - high) / max(abs(high), absolute or 1.0)
    return CheckResult(value=value, bound=bound, passed=excess == 0.0, excess=round(excess, 6))


# --- the recogniser the gate shares ------------------------------------------------------------------

_recognising = threading.Lock()


@lru_cache(maxsize=1)
def shared_recogniser() -> Recogniser:
    """One PocketSphinx for the whole process (0.5 s to load; the gather threads take turns)."""
    return PocketSphinx(quick=True)


def recognise(recogniser: Recogniser, audio: np.ndarray, rate: int) -> str:
    with _recognising:  # a decoder is not safe to share between threads
        return recogniser.transcribe(audio, rate)
