"""The checks of a voice clip, each with its bound, its verdict and what to do: how much speech, how
loud, clipped or not, how far above the room's noise, pauses, music, a second voice.

Measured on the chosen window of the recording as it was recorded (before the clip is normalised):
what the person can change by recording again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from narrate.track.audio import integrated_loudness
from narrate.voices.report import ClipCheck, Verdict
from narrate.voices.speech import SpeechMap
from narrate.voices.tones import phrase_pitches, pitch_gap, steady_tone_share
from narrate.voices.window import KEPT_PAUSE_SECONDS, LONG_PAUSE_SECONDS, ClipBounds, Window

MIN_SPEECH_SECONDS = 3.0  # under this, no clone: Qwen3-TTS needs a few seconds of the voice
QUIET_LUFS = -40.0  # quieter recordings bring their noise up with them when normalised
CLIPPED_LEVEL = 0.95  # a decoded sample this close to full scale is at the rail (lossy codecs ring)
CLIPPED_PEAKS_PER_SECOND = 1.0  # a clean recording has a handful of such peaks, a clipped one hundreds
NOISY_SNR_DB = 20.0
UNUSABLE_SNR_DB = 10.0
SILENCE_SECONDS = 2.0  # a pause this long inside the clip is a stop, not a breath: joined across
STEADY_TONE_SHARE = 0.2
VOICES_GAP_SEMITONES = 4.0  # one speaker's phrases stay within a few semitones of each other
VOICE_MIN_SECONDS = 0.5  # each of two voices must hold this much voiced speech to be told apart


@dataclass(frozen=True)
class Measured:
    """What the checks look at: the recording, where it speaks, and the chosen window."""

    audio: np.ndarray  # the recording, mono at speech.rate
    speech: SpeechMap
    window: Window
    bounds: ClipBounds


def clipped_peaks(audio: np.ndarray) -> np.ndarray:
    """Sample positions where the signal reaches CLIPPED_LEVEL of full scale (one per run)."""
    at_rail = np.abs(audio) >= CLIPPED_LEVEL
    return np.flatnonzero(at_rail[1:] & ~at_rail[:-1]) + 1


def check_clip(measured: Measured, clipped_at: np.ndarray) -> list[ClipCheck]:
    return [
        _duration(measured),
        _loudness(measured),
        _clipping(measured, clipped_at),
        _signal_to_noise(measured),
        _pauses(measured),
        _music(measured),
        _voices(measured),
    ]


def _check(
    name: str, value: float | None, unit: str, detail: str, problem: tuple[Verdict, str] | None
) -> ClipCheck:
    verdict, advice = problem if problem else (Verdict.PASS, None)
    return ClipCheck(name=name, value=value, unit=unit, verdict=verdict, detail=detail, advice=advice)


def _duration(measured: Measured) -> ClipCheck:
    window, rate = measured.window, measured.speech.rate
    seconds = round(measured.speech.speech_seconds(window.start, window.end), 2)
    length = window.seconds(rate)
    bounds = measured.bounds
    detail = f"{seconds:.1f} s of speech in a {length:.1f} s clip"
    problem = None
    if seconds < MIN_SPEECH_SECONDS:
        problem = (
            Verdict.FAIL,
            f"less than {MIN_SPEECH_SECONDS:.0f} s of speech: record at least "
            f"{bounds.min_seconds:.0f} s of yourself speaking without stopping",
        )
    elif length < bounds.min_seconds:
        problem = (
            Verdict.WARN,
            f"short: {bounds.min_seconds:.0f}-{bounds.max_seconds:.0f} s clones best; record a longer memo",
        )
    return _check("duration", seconds, "s", detail, problem)


def _loudness(measured: Measured) -> ClipCheck:
    window = measured.window
    loudness = integrated_loudness(measured.audio[window.start : window.end], measured.speech.rate)
    value = round(loudness, 1) if np.isfinite(loudness) else None
    detail = f"{loudness:.1f} LUFS as recorded" if value is not None else "too short or silent to measure"
    problem = None
    if value is None or loudness < QUIET_LUFS:
        problem = (
            Verdict.WARN,
            f"too quiet (under {QUIET_LUFS:.0f} LUFS): re-record closer to the microphone; "
            "raising it afterwards raises the room's noise too",
        )
    return _check("loudness", value, "LUFS", detail, problem)


def _clipping(measured: Measured, clipped_at: np.ndarray) -> ClipCheck:
    window, rate = measured.window, measured.speech.rate
    count = int(np.count_nonzero((clipped_at >= window.start) & (clipped_at < window.end)))
    per_second = round(count / max(window.seconds(rate), 1e-9), 2)
    detail = f"{count} peak(s) at full scale ({per_second:g} a second)"
    problem = None
    if per_second > CLIPPED_PEAKS_PER_SECOND:
        problem = (
            Verdict.WARN,
            "clipped: the voice was too loud for the recorder; re-record with the phone "
            "a little further away, or the input gain lower",
        )
    return _check("clipping", per_second, "peaks/s", detail, problem)


def _signal_to_noise(measured: Measured) -> ClipCheck:
    window, speech = measured.window, measured.speech
    level = speech.speech_level_db(window.start, window.end)
    ratio = round(level - speech.noise_floor_db, 1)
    detail = f"speech {level:.1f} dBFS over a noise floor of {speech.noise_floor_db:.1f} dBFS"
    problem = None
    if ratio < UNUSABLE_SNR_DB:
        problem = (
            Verdict.FAIL,
            "the voice barely rises above the noise: record in a quiet room, close to the microphone",
        )
    elif ratio < NOISY_SNR_DB:
        problem = (
            Verdict.WARN,
            "noisy: the clone copies the room's noise; record in a quieter room "
            "(no fan, traffic or TV), closer to the microphone",
        )
    return _check("signal_to_noise", ratio, "dB", detail, problem)


def _pauses(measured: Measured) -> ClipCheck:
    rate, phrases, window = measured.speech.rate, measured.speech.phrases, measured.window
    inside = [(phrases[k + 1].start - phrases[k].end) / rate for k in range(window.first, window.last)]
    longest = round(max(inside, default=0.0), 2)
    detail = f"longest pause inside the clip {longest:.2f} s"
    if window.long_pauses:
        detail += (
            f"; {len(window.long_pauses)} pause(s) over {LONG_PAUSE_SECONDS:.1f} s shortened to "
            f"{KEPT_PAUSE_SECONDS:.1f} s (a clone copies long pauses)"
        )
    problem = None
    if longest >= SILENCE_SECONDS:
        problem = (
            Verdict.WARN,
            f"a silence of {longest:.1f} s inside the clip was cut out: listen that the clip still "
            "flows, or record again without stopping",
        )
    return _check("pauses", longest, "s", detail, problem)


def _music(measured: Measured) -> ClipCheck:
    window = measured.window
    share = steady_tone_share(measured.audio[window.start : window.end], measured.speech.rate)
    detail = f"steady tones during {share:.0%} of the clip"
    problem = None
    if share >= STEADY_TONE_SHARE:
        problem = (
            Verdict.WARN,
            "music or a steady tone (a fan, a hum) under the voice: the clone copies it; "
            "record with no music playing, away from fans and screens",
        )
    return _check("music", round(share, 3), "share", detail, problem)


def _voices(measured: Measured) -> ClipCheck:
    speech, window = measured.speech, measured.window
    phrases = list(speech.phrases[window.first : window.last + 1])
    pitches = phrase_pitches(measured.audio, speech.rate, phrases)
    min_frames = round(VOICE_MIN_SECONDS * 100)  # pitch frames are 10 ms
    gap = round(pitch_gap(pitches, min_frames), 1)
    detail = f"{len(pitches)} phrase(s); widest pitch gap between them {gap:.1f} semitones"
    problem = None
    if gap >= VOICES_GAP_SEMITONES:
        problem = (
            Verdict.WARN,
            "two voices? some phrases are pitched far from the others; the clip must be "
            "one person alone: cut the other voice out, or record again",
        )
    return _check("voices", gap, "semitones", detail, problem)
