"""The quality gate's measures on real takes of the Piper voice, and on the same takes spoiled the way
neural TTS spoils them: run on past its words, cut short, a long silence inside, clipped, too quiet, and
babble the recogniser (PocketSphinx, which this project did not write) cannot hear as the text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model_server.engines.piper import PiperEngine
from model_server.protocol import PiperVoiceRequest
from narrate.check.gate import (
    Check,
    GateBounds,
    SpeakingPace,
    clipped_share,
    expected_seconds,
    judge,
    measure_take,
    shared_recogniser,
)
from narrate.errors import ConfigError
from narrate.settings import Settings

TEXT = "Open the dashboard and connect your data source in a few clicks."
RATE = 22050
PIPER = SpeakingPace.of_request({"mode": "piper", "language": "english", "length_scale": 1.0,
                                 "sentence_silence": 0.15})  # fmt: skip


@pytest.fixture(scope="module")
def take() -> np.ndarray:
    return PiperEngine().speak(TEXT, PiperVoiceRequest(mode="piper"), seed=0)


def verdict(audio: np.ndarray, handler: dict[str, object] | None = None, **bounds: object):  # type: ignore[no-untyped-def]
    settings = Settings(**{f"gate_{k}": v for k, v in bounds.items()})  # type: ignore[arg-type]
    gate = GateBounds.from_settings(settings)
    measures = measure_take(audio, RATE, TEXT, PIPER, handler or {}, gate.recogniser_for(PIPER))
    return judge(measures, PIPER, gate)


def test_a_good_take_passes_every_check(take: np.ndarray) -> None:
    result = verdict(take)
    assert result.passed, result.summary()
    assert set(result.checks) == set(Check)
    assert result.checks["words"].value >= 0.5  # the recogniser heard most of it
    assert result.checks["similarity"].passed is None  # not a clone: not measured, not failed


def test_a_runaway_take_fails_its_duration(take: np.ndarray) -> None:
    runaway = np.concatenate([take] * 4)
    result = verdict(runaway, checks="duration")
    assert result.failed == ["duration"]
    assert result.checks["duration"].value > 2.5 * expected_seconds(TEXT)


def test_a_truncated_take_fails_its_duration(take: np.ndarray) -> None:
    result = verdict(take[: len(take) // 4], checks="duration")
    assert result.failed == ["duration"]


def test_a_long_silence_inside_a_take_fails(take: np.ndarray) -> None:
    middle = len(take) // 2
    gap = np.concatenate([take[:middle], np.zeros(3 * RATE, np.float32), take[middle:]])
    result = verdict(gap, checks="silence")
    assert result.failed == ["silence"] and result.checks["silence"].value >= 2.9
    assert verdict(take, checks="silence").passed  # its own pauses are short


def test_a_clipped_take_fails_and_one_full_scale_peak_does_not(take: np.ndarray) -> None:
    clipped = np.clip(take * 20, -1.0, 1.0)
    assert verdict(clipped, checks="clipping").failed == ["clipping"]
    peak = take / np.max(np.abs(take))  # normalised: touches full scale once
    assert clipped_share(peak) == 0.0 and verdict(peak, checks="clipping").passed


def test_a_take_too_quiet_fails_its_level(take: np.ndarray) -> None:
    assert verdict(take * 0.001, checks="level").failed == ["level"]


def test_a_take_that_stopped_at_its_frame_cap_fails(take: np.ndarray) -> None:
    assert verdict(take, {"hit_frame_limit": True}, checks="frame_cap").failed == ["frame_cap"]


def test_a_clone_take_unlike_its_reference_fails(take: np.ndarray) -> None:
    assert verdict(take, {"speaker_similarity": 0.2}, checks="similarity").failed == ["similarity"]
    assert verdict(take, {"speaker_similarity": 0.8}, checks="similarity").passed


def test_babble_is_not_heard_as_the_text(take: np.ndarray) -> None:
    babble = take[::-1].copy()  # the same voice and level, played backwards: no words of the text
    result = verdict(babble, checks="words")
    assert result.failed == ["words"], result.checks["words"]


def test_the_recogniser_listens_only_to_sampling_voices_in_its_language() -> None:
    gate = GateBounds.from_settings(Settings())
    assert gate.recogniser_for(PIPER) is shared_recogniser()
    dev = SpeakingPace.of_request({"mode": "dev", "language": "english", "rate_wpm": 165})
    german = SpeakingPace.of_request({"mode": "custom_voice", "language": "german"})
    assert gate.recogniser_for(dev) is None and gate.recogniser_for(german) is None
    assert GateBounds.from_settings(Settings(gate_checks="duration")).recogniser_for(PIPER) is None


def test_the_expected_time_follows_the_voice_pace_and_script() -> None:
    slow = SpeakingPace.of_request({"mode": "dev", "rate_wpm": 82})
    assert slow.pace == pytest.approx(82 / 165)
    assert expected_seconds("今日は良い天気です") > expected_seconds("Good weather")


def test_an_unknown_check_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"NARRATE_GATE_CHECKS: unknown check.*loudness.*duration"):
        GateBounds.from_settings(Settings(gate_checks="duration,loudness"))
    assert GateBounds.from_settings(Settings(gate_checks="none")).checks == frozenset()


def test_a_cached_take_already_heard_is_judged_without_loading_the_recogniser(
    tmp_path: Path, take: np.ndarray
) -> None:
    """An all-cached render judges every take from its note: loading PocketSphinx for that cost 0.5-6 s
    of a render that has nothing to do."""
    import io

    import soundfile as sf

    from narrate.synthesis.cache import ClipCache
    from tasks.quality import judge_cached
    from tasks.script import PlannedSegment

    gate = GateBounds.from_settings(Settings())
    voice = {"mode": "piper", "language": "english", "length_scale": 1.0, "sentence_silence": 0.15}
    measures = measure_take(take, RATE, TEXT, PIPER, {}, gate.recogniser_for(PIPER))
    wav = io.BytesIO()
    sf.write(wav, take, RATE, format="WAV", subtype="PCM_16")
    cache = ClipCache(tmp_path)
    cache.put_wav("ab" * 32, wav.getvalue(), {"text": TEXT, "measures": measures.model_dump()})
    shared_recogniser.cache_clear()
    judged = judge_cached(cache, PlannedSegment("s", TEXT, "ab" * 32), voice, gate)
    assert judged.measures.words_heard == measures.words_heard and judged.verdict.passed
    assert shared_recogniser.cache_info().currsize == 0  # nothing loaded it
    cache.put_note("ab" * 32, {"text": TEXT})  # a clip cached before the gate: measured, heard, once
    assert judge_cached(cache, PlannedSegment("s", TEXT, "ab" * 32), voice, gate).measures.words_heard
    assert shared_recogniser.cache_info().currsize == 1
