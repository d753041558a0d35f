"""Assembly is sample-exact: known clip lengths land at known samples, on frames, with no drift."""

from __future__ import annotations

import base64
import io
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from model_server.config import ServerConfig
from narrate.errors import AssemblyError
from narrate.script import NarrationScript
from narrate.synthesis.requests import model_identity
from narrate.track.audio import integrated_loudness, prepare_clip, true_peak_dbtp
from narrate.track.loudness import normalise
from narrate.track.timeline import first_frame_at_or_after, frame_start_sample, layout_scenes
from narrate.video.ffmpeg import Ffmpeg, decode_audio, file_metadata
from tasks.assembly import (
    LARGE_TRACK_SAMPLES,
    TrackPlan,
    build_track,
    check_no_drift,
    mp3_encoder,
    write_staged,
    zeroed_track,
)
from tasks.script import PlannedSegment
from tests.narrate.track.meter import ebur128

RATE = 24000


def speechlike(seconds: float, seed: int, rate: int = RATE) -> np.ndarray:
    """Noise shaped by a 4 Hz syllable envelope: a crest factor like speech, no silence at the ends."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    envelope = 0.35 + 0.3 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.2 * envelope * rng.standard_normal(t.size)).astype(np.float32)


def script(n: int, **output: object) -> NarrationScript:
    return NarrationScript.model_validate(
        {
            "title": "t",
            "voice": {"engine": "dev"},
            "output": {"formats": ["wav"], **output},
            "segments": [
                {
                    "id": f"s{i}",
                    "text": f"Segment {i}.",
                    "min_seconds": 0.5 * (i % 3),
                    "pause_after_seconds": 0.1,
                }
                for i in range(n)
            ],
        }
    )


def plan(narration: NarrationScript) -> list[PlannedSegment]:
    return [PlannedSegment(s.id, s.text, f"{i:064x}") for i, s in enumerate(narration.segments)]


def track(narration: NarrationScript) -> TrackPlan:
    identity = model_identity(narration.voice, ServerConfig(), "local")
    return TrackPlan(narration, plan(narration), identity)


def test_layout_exact_positions_at_30_fps() -> None:
    spans = layout_scenes([24000, 12000, 800], [0, 48000, 0], [2400, 0, 0], RATE, Fraction(30))
    # 30 fps at 24 kHz: 800 samples a frame. 26400 -> frame 33; 48000 more -> frame 93; 800 more -> frame 94.
    assert [(s.start_sample, s.scene_end_sample) for s in spans] == [
        (0, 26400),
        (26400, 74400),
        (74400, 75200),
    ]
    assert [(s.start_frame, s.end_frame) for s in spans] == [(0, 33), (33, 93), (93, 94)]
    assert [s.padding_samples for s in spans] == [2400, 36000, 0]


def test_boundaries_round_up_to_the_next_frame_at_ntsc_rates() -> None:
    fps = Fraction(30000, 1001)  # 800.8 samples a frame at 24 kHz
    spans = layout_scenes([1000, 1000, 1000], [0, 0, 0], [0, 0, 0], RATE, fps)
    assert [s.scene_end_sample for s in spans] == [1602, 3204, 4805]
    for span in spans:
        assert frame_start_sample(span.end_frame, RATE, fps) == span.scene_end_sample
        assert span.scene_end_sample >= span.start_sample + span.clip_samples
    assert first_frame_at_or_after(1602, RATE, fps) == 2


def test_no_drift_over_500_segments_at_ntsc_rate() -> None:
    fps = Fraction(30000, 1001)
    rng = np.random.default_rng(7)
    clips = [int(x) for x in rng.integers(2000, 120000, 500)]
    pauses = [int(x) for x in rng.integers(0, 5000, 500)]
    spans = layout_scenes(clips, [0] * 500, pauses, RATE, fps)
    position = 0
    for span, clip in zip(spans, clips, strict=True):
        assert span.start_sample == position
        assert span.start_sample == frame_start_sample(span.start_frame, RATE, fps)
        assert span.padding_samples >= 0
        position += clip + span.padding_samples
    assert position == spans[-1].scene_end_sample
    # every scene is at most one frame longer than it needs: rounding never accumulates
    frame = Fraction(RATE) / fps
    for span, clip, pause in zip(spans, clips, pauses, strict=True):
        assert 0 <= span.scene_end_sample - span.start_sample - (clip + pause) < frame


def test_track_matches_timeline_and_real_clips(tmp_path: Path) -> None:
    narration = script(12)
    raw = [(speechlike(0.4 + 0.1 * i, i, 22050), 22050) for i in range(12)]
    assembled = build_track(track(narration), raw)
    timeline = assembled.timeline
    expected = [len(prepare_clip(a, r, RATE)) for a, r in raw]
    assert [s.clip_samples for s in timeline.segments] == expected
    position = 0
    for segment in timeline.segments:
        assert segment.start_sample == position
        position += segment.clip_samples + segment.padding_samples
    assert position == timeline.total_samples == len(assembled.track)
    staged = write_staged(tmp_path, track(narration), assembled)
    check_no_drift(timeline, assembled.clips, staged["wav"])
    written = json.loads(staged["timeline"].read_text())
    assert written["segments"][3]["start_sample"] == timeline.segments[3].start_sample
    assert "Synthetic speech" in written["disclosure"]
    with sf.SoundFile(staged["wav"]) as wav:
        assert wav.comment.startswith("Synthetic speech")


def test_drift_check_catches_a_moved_clip(tmp_path: Path) -> None:
    narration = script(3)
    raw = [(speechlike(0.5, i), RATE) for i in range(3)]
    assembled = build_track(track(narration), raw)
    staged = write_staged(tmp_path, track(narration), assembled)
    audio, _ = sf.read(staged["wav"], dtype="float32")
    shifted = np.roll(audio, 1)
    sf.write(staged["wav"], shifted, RATE, subtype="PCM_16")
    with pytest.raises(AssemblyError, match="does not hold this clip"):
        check_no_drift(assembled.timeline, assembled.clips, staged["wav"])
    longer = assembled.timeline.model_copy(update={"total_samples": assembled.timeline.total_samples + 1})
    with pytest.raises(AssemblyError, match="timeline says"):
        check_no_drift(longer, assembled.clips, staged["wav"])


@pytest.mark.parametrize("target", [-16.0, -19.0, -23.0])
def test_loudness_within_half_an_lu_and_peak_under_ceiling(tmp_path: Path, target: float) -> None:
    narration = script(10, loudness_lufs=target)
    raw = [(speechlike(1.0, i) * (0.2 + 0.3 * (i % 2)), RATE) for i in range(10)]
    assembled = build_track(track(narration), raw)
    staged = write_staged(tmp_path, track(narration), assembled)
    audio, _ = sf.read(staged["wav"], dtype="float32")
    assert abs(integrated_loudness(audio, RATE) - target) <= 0.5
    assert true_peak_dbtp(audio) <= -1.0 + 0.05
    assert not assembled.timeline.loudness.peak_limited


def test_true_peak_ceiling_wins_over_the_target(tmp_path: Path) -> None:
    clicks = np.zeros(RATE * 3, dtype=np.float32)
    clicks[::4800] = 0.9
    narration = script(1, loudness_lufs=-10.0)
    assembled = build_track(track(narration), [(clicks + speechlike(3, 1) * 0.01, RATE)])
    assert assembled.timeline.loudness.peak_limited
    assert true_peak_dbtp(assembled.track) <= -1.0 + 0.05


def test_trim_removes_silence_and_keeps_speech() -> None:
    speech = speechlike(1.0, 3)
    padded = np.concatenate([np.zeros(RATE), speech, np.zeros(RATE // 2)])
    trimmed = prepare_clip(padded, RATE, RATE)
    assert abs(len(trimmed) - len(speech)) <= int(0.05 * RATE)
    assert abs(trimmed[0]) < 1e-3 and abs(trimmed[-1]) < 1e-3  # faded at the cut


def test_mp3_is_the_staged_track_with_the_disclosure(tmp_path: Path) -> None:
    narration = script(4, formats=["wav", "mp3"])
    raw = [(speechlike(0.6, i), RATE) for i in range(4)]
    assembled = build_track(track(narration), raw)
    staged = write_staged(tmp_path, track(narration), assembled)
    assert list(staged)[-1] == "timeline"  # moved into place last
    ff = Ffmpeg()
    decoded = decode_audio(ff, staged["mp3"], RATE)
    assert len(decoded) == assembled.timeline.total_samples
    assert abs(integrated_loudness(decoded, RATE) - integrated_loudness(assembled.track, RATE)) < 0.3
    assert file_metadata(ff, staged["mp3"])[0]["comment"] == assembled.timeline.disclosure


def test_mp3_started_at_the_loudness_gain_is_redone_when_the_limiter_acts(tmp_path: Path) -> None:
    clicks = np.zeros(RATE * 3, dtype=np.float32)
    clicks[::4800] = 0.9
    samples = clicks + speechlike(3, 1) * np.float32(0.01)
    narration = script(1, loudness_lufs=-10.0, formats=["wav", "mp3"])
    with mp3_encoder(tmp_path, track(narration)) as mp3:
        assert mp3 is not None
        started_at: list[float] = []  # the true peak of the track each encode started from
        start = mp3.start
        mp3.start = lambda track: (started_at.append(true_peak_dbtp(track)), start(track))[1]  # type: ignore[method-assign]
        loudness = normalise(samples, RATE, -10.0, -1.0, mp3)
        encoded = mp3.result()
        assert len(started_at) == 2 and started_at[0] > 0.0 and started_at[1] <= -1.0  # redone, limited
        decoded = decode_audio(Ffmpeg(), encoded, RATE)
    assert loudness.peak_limited and loudness.true_peak_dbtp <= -1.0
    assert loudness.output_lufs == pytest.approx(-10.0, abs=0.5)  # the limiter lets it reach the target
    assert integrated_loudness(decoded, RATE) == pytest.approx(loudness.output_lufs, abs=1.0)


def test_normalise_reports_the_true_peak_of_the_gained_track() -> None:
    track = speechlike(4.0, 5) * np.float32(0.3)
    loudness = normalise(track, RATE, -16.0, -1.0)
    assert not loudness.peak_limited
    assert loudness.output_lufs == pytest.approx(integrated_loudness(track, RATE), abs=1e-3)
    assert loudness.true_peak_dbtp == true_peak_dbtp(track)


@pytest.mark.parametrize("samples", [0, 1000, LARGE_TRACK_SAMPLES + 3])
def test_zeroed_track_is_writable_float32_zeros(samples: int) -> None:
    track = zeroed_track(samples)
    assert track.dtype == np.float32 and track.shape == (samples,) and not track.any()
    track[samples // 2 :] += 0.5
    assert track.sum() == pytest.approx(0.5 * (samples - samples // 2))


def test_espeak_clips_reach_the_target_under_the_ceiling_evenly(tmp_path: Path) -> None:
    """The robot voice is the peakiest here: one constant gain stopped at the ceiling, 4 LU short.
    Measured by ffmpeg's BS.1770 meter (true peak oversampled), each clip by pyloudnorm's."""
    from model_server import inference

    model = inference.load_model(ServerConfig(engines="dev"))
    texts = [
        "Welcome to Acme Insights.",
        "Pick the tables you need, then press Build.",
        "Filters apply to every widget on the page at once.",
        "Alerts tell you when a number moves.",
    ]
    body = {
        "voice": {"mode": "dev", "language": "en"},
        "segments": [{"id": f"s{i}", "text": t} for i, t in enumerate(texts)],
    }
    reply = json.loads(
        inference.output_fn(
            inference.predict_fn(inference.input_fn(json.dumps(body), "application/json"), model), None
        )
    )
    raw = [
        sf.read(io.BytesIO(base64.b64decode(s["audio_base64"])), dtype="float32") for s in reply["segments"]
    ]
    narration = script(len(raw))
    assembled = build_track(track(narration), raw)
    staged = write_staged(tmp_path, track(narration), assembled)
    measured = ebur128(staged["wav"])
    assert measured.integrated_lufs == pytest.approx(-16.0, abs=0.5) and measured.true_peak_dbtp <= -1.0
    audio, rate = sf.read(staged["wav"], dtype="float64")
    meter = pyloudnorm.Meter(rate)
    segments = assembled.timeline.segments
    clips = [meter.integrated_loudness(audio[s.start_sample : s.end_sample]) for s in segments]
    assert max(clips) - min(clips) <= 1.0
    loudness = assembled.timeline.loudness
    assert loudness.peak_limited and loudness.limiter_max_reduction_db > 0 and loudness.limited_seconds > 0
    assert any(s.limiter_max_reduction_db > 0 for s in segments) and all(s.clip_lufs for s in segments)
