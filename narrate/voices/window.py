"""The clip cut from a recording as an engineer would: the best continuous stretch of speech of the
recommended length, starting and ending in pauses (never inside a word), with a little room tone at
each end, long pauses inside shortened, short fades, and its loudness normalised."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from narrate.errors import ClipRejected
from narrate.track.audio import apply_fades, gain_factor, integrated_loudness
from narrate.track.loudness import limit_to_loudness
from narrate.voices.speech import CUT_PAUSE_SECONDS, SpeechMap

LEAD_SECONDS = 0.15  # room tone kept before the first word and after the last
LONG_PAUSE_SECONDS = 0.8  # a pause inside the clip longer than this is shortened (clones copy pauses)
KEPT_PAUSE_SECONDS = 0.4  # to this
CROSSFADE_SECONDS = 0.010  # where a pause is shortened, its two halves are crossfaded over this
SHORT_PHRASE_SECONDS = 1.0  # a lone "so, um" or a breath before a pause: not where a clip should start
REFERENCE_LUFS = -20.0  # the clip's loudness once normalised
REFERENCE_PEAK_DBTP = -1.0
NO_SPEECH = "no speech found: it is silent or only noise; record yourself speaking"


@dataclass(frozen=True)
class ClipBounds:
    """How long the clip's speech should be (Qwen3-TTS clones best from 10-15 s; it takes 2-60 s)."""

    min_seconds: float = 10.0
    max_seconds: float = 15.0


@dataclass(frozen=True)
class Window:
    """The chosen stretch of the recording, in its samples: phrases ``first`` to ``last``."""

    first: int
    last: int
    start: int  # the cut before the first word (in a pause)
    end: int  # the cut after the last word
    long_pauses: tuple[tuple[int, int], ...]  # pauses inside it longer than LONG_PAUSE_SECONDS

    def seconds(self, rate: int) -> float:
        """Its length once its long pauses are shortened."""
        removed = sum(end - start for start, end in self.long_pauses)
        kept = round(KEPT_PAUSE_SECONDS * rate) * len(self.long_pauses)
        return (self.end - self.start - removed + kept) / rate


def choose_window(speech: SpeechMap, bounds: ClipBounds, clipped_at: np.ndarray) -> Window:
    """The best window: of the right length if any is, else the longest; among those, the most fluent
    (speech density), cut at the clearest pauses, not starting or ending on a lone short phrase, with
    the fewest long pauses and clipped peaks. ``clipped_at``: sample positions of clipped peaks."""
    phrases, rate = speech.phrases, speech.rate
    if not phrases:
        raise ClipRejected("recording", [NO_SPEECH])
    fitting: list[tuple[float, Window]] = []
    others: list[tuple[tuple[float, float], Window]] = []
    for first in range(len(phrases)):
        for last in range(first, len(phrases)):
            window = _window(speech, first, last)
            length = window.seconds(rate)
            if length > bounds.max_seconds + 2 * LEAD_SECONDS:
                break
            score = _score(speech, window, clipped_at)
            if length >= bounds.min_seconds:
                fitting.append((score, window))
            else:
                others.append(((round(length, 1), score), window))
    if fitting:
        return max(fitting, key=lambda item: item[0])[1]
    if others:
        return max(others, key=lambda item: item[0])[1]
    longest = max(p.seconds(rate) for p in phrases)
    raise ClipRejected(
        "recording",
        [
            f"no pause of {CUT_PAUSE_SECONDS} s to cut at within {longest:.0f} s of speech: record with "
            f"short pauses between sentences, or raise --max-seconds above {longest:.0f}"
        ],
    )


def whole_window(speech: SpeechMap) -> Window:
    """All the recording's speech, first word to last (for a transcript that cannot be cut)."""
    if not speech.phrases:
        raise ClipRejected("recording", [NO_SPEECH])
    return _window(speech, 0, len(speech.phrases) - 1)


def cut_clip(audio: np.ndarray, window: Window, rate: int) -> np.ndarray:
    """The window's samples with its long pauses shortened, faded in and out, normalised to
    REFERENCE_LUFS under a REFERENCE_PEAK_DBTP true-peak ceiling."""
    half = round(KEPT_PAUSE_SECONDS * rate / 2)
    fade = round(CROSSFADE_SECONDS * rate)
    pieces: list[np.ndarray] = []
    position = window.start
    for start, end in window.long_pauses:
        pieces.append(audio[position : start + half + fade])
        position = end - half
    pieces.append(audio[position : window.end])
    clip = pieces[0].astype(np.float32, copy=True)
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    for piece in pieces[1:]:
        clip[-fade:] = clip[-fade:] * ramp[::-1] + piece[:fade] * ramp
        clip = np.concatenate([clip, piece[fade:]])
    clip = apply_fades(clip, rate)
    loudness = integrated_loudness(clip, rate)
    if np.isfinite(loudness):
        clip *= gain_factor(REFERENCE_LUFS - loudness)
        limit_to_loudness(clip, rate, REFERENCE_LUFS, REFERENCE_PEAK_DBTP)
    return clip


def _window(speech: SpeechMap, first: int, last: int) -> Window:
    phrases, rate, total = speech.phrases, speech.rate, len(speech.levels_db) * speech.hop
    lead = round(LEAD_SECONDS * rate)
    before = phrases[first].start - (phrases[first - 1].end if first else 0)
    after = (phrases[last + 1].start if last + 1 < len(phrases) else total) - phrases[last].end
    start = phrases[first].start - min(lead, before // 2 if first else before)
    end = phrases[last].end + min(lead, after // 2 if last + 1 < len(phrases) else after)
    long_pauses = tuple(
        (phrases[k].end, phrases[k + 1].start)
        for k in range(first, last)
        if phrases[k + 1].start - phrases[k].end > LONG_PAUSE_SECONDS * rate
    )
    return Window(first, last, start, end, long_pauses)


def _score(speech: SpeechMap, window: Window, clipped_at: np.ndarray) -> float:
    phrases, rate = speech.phrases, speech.rate
    first, last = phrases[window.first], phrases[window.last]
    length = window.seconds(rate)
    density = speech.speech_seconds(first.start, last.end) / max(length, 1e-9)
    before = (first.start - phrases[window.first - 1].end) / rate if window.first else 1.0
    after = (phrases[window.last + 1].start - last.end) / rate if window.last + 1 < len(phrases) else 1.0
    lone = sum(p.seconds(rate) < SHORT_PHRASE_SECONDS for p in (first, last) if window.first != window.last)
    clipped = np.count_nonzero((clipped_at >= window.start) & (clipped_at < window.end)) / max(length, 1e-9)
    return (
        density
        + 0.25 * (min(before, 1.0) + min(after, 1.0))
        - 0.5 * lone
        - 0.2 * len(window.long_pauses)
        - 0.5 * min(clipped, 2.0)
    )
