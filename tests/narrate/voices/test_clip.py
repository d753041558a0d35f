"""The clip cut from a recording as an engineer would, and each check's verdict: a clean memo passes,
a clipped, too quiet, stopped or too short one is refused with what to do, and a two-minute recording
gives a 10-15 s clip whose ends lie in pauses."""

from __future__ import annotations

import numpy as np
import pytest

from narrate.errors import ClipRejected
from narrate.testing.memo import RATE
from narrate.track.audio import integrated_loudness, true_peak_dbtp
from narrate.voices.add import PreparedClip, prepare_clip, refuse_problems
from narrate.voices.decode import Recording
from narrate.voices.report import Verdict
from narrate.voices.window import REFERENCE_LUFS, ClipBounds
from tests.narrate.voices.memos import Laid, lay_out, spoken_sentences

BOUNDS = ClipBounds()


def prepared(audio: np.ndarray) -> PreparedClip:
    return prepare_clip(Recording(audio.astype(np.float32), "pcm_f32le", "wav", 1, RATE), "memo.wav", BOUNDS)


def verdicts(clip: PreparedClip) -> dict[str, Verdict]:
    return {check.name: check.verdict for check in clip.checks}


def memo(pauses: tuple[float, ...] = (0.8, 0.55, 0.55, 0.55, 0.55)) -> Laid:
    return lay_out(list(spoken_sentences()), list(pauses))


def test_a_clean_memo_passes_every_check_and_is_cut_trimmed_and_normalised() -> None:
    laid = memo()
    clip = prepared(laid.audio)
    assert set(verdicts(clip).values()) == {Verdict.PASS}, [c.line() for c in clip.checks]
    refuse_problems(clip, accept_warnings=False)  # nothing to refuse
    assert BOUNDS.min_seconds <= clip.cut.clip_seconds <= BOUNDS.max_seconds + 0.5
    assert clip.window_start > laid.spans[0][1]  # the lone "So, um." is left out
    assert abs(integrated_loudness(clip.samples, RATE) - REFERENCE_LUFS) < 0.5
    assert true_peak_dbtp(clip.samples) <= -0.9
    assert np.abs(clip.samples[:24]).max() < 0.01 and np.abs(clip.samples[-24:]).max() < 0.01  # faded


def test_a_clipped_recording_is_refused_unless_its_warnings_are_accepted() -> None:
    clipped = np.clip(memo().audio * 12, -1.0, 1.0)
    clip = prepared(clipped)
    assert verdicts(clip)["clipping"] is Verdict.WARN
    with pytest.raises(ClipRejected, match="clipping: clipped: the voice was too loud") as refused:
        refuse_problems(clip, accept_warnings=False)
    assert "--accept-warnings" in str(refused.value)
    refuse_problems(clip, accept_warnings=True)


def test_a_quiet_recording_is_refused_with_closer_to_the_microphone() -> None:
    quiet = lay_out([s * 0.02 for s in spoken_sentences()], [0.8, 0.55, 0.55, 0.55, 0.55], tone_dbfs=-95)
    clip = prepared(quiet.audio)
    assert verdicts(clip)["loudness"] is Verdict.WARN
    with pytest.raises(ClipRejected, match="re-record closer to the microphone"):
        refuse_problems(clip, accept_warnings=False)


def test_a_long_silence_inside_the_clip_is_cut_out_and_warned_of() -> None:
    _, first, second, third, fourth = spoken_sentences()
    laid = lay_out([first, second, third, fourth], [0.5, 4.0, 0.5, 0.5])
    clip = prepared(laid.audio)
    pauses = next(c for c in clip.checks if c.name == "pauses")
    assert pauses.verdict is Verdict.WARN and pauses.value is not None and pauses.value > 3.5
    assert "cut out" in (pauses.advice or "")
    assert (
        clip.cut.shortened_pauses and clip.cut.clip_seconds < (clip.window_end - clip.window_start) / RATE - 3
    )
    level = np.convolve(clip.samples**2, np.ones(RATE // 10) / (RATE // 10), mode="valid")
    quiet = level < 10 ** (-50 / 10)
    longest, run = 0, 0
    for silent in quiet:
        run = run + 1 if silent else 0
        longest = max(longest, run)
    assert longest / RATE < 0.6  # no stretch of silence left longer than a kept pause


def test_too_little_speech_is_refused_even_with_accept_warnings() -> None:
    clip = prepared(lay_out([spoken_sentences()[4][: RATE * 2]], [0.3]).audio)
    assert verdicts(clip)["duration"] is Verdict.FAIL
    with pytest.raises(ClipRejected, match="less than 3 s of speech"):
        refuse_problems(clip, accept_warnings=True)


def test_from_two_minutes_the_clip_is_10_to_15_s_cut_in_pauses() -> None:
    sentences = spoken_sentences()
    rng = np.random.default_rng(5)
    parts = [sentences[1 + k % 4] for k in range(36)]
    pauses = rng.uniform(0.3, 1.2, len(parts)).round(2).tolist()
    laid = lay_out(parts, pauses)
    assert len(laid.audio) / RATE > 120
    clip = prepared(laid.audio)
    assert BOUNDS.min_seconds <= clip.cut.clip_seconds <= BOUNDS.max_seconds + 0.5
    gaps = [(end, start) for (_, end), (start, _) in zip(laid.spans, laid.spans[1:], strict=False)]
    for cut in (clip.window_start, clip.window_end):
        assert any(end <= cut <= start for end, start in gaps), f"cut at {cut / RATE:.2f} s is inside a word"
