"""The timeline picture: decodable PNG of the documented size, a red boundary exactly where each segment
starts, the waveform where the clips are (and lighter where the padding is), the loudness line at the
track's short-term loudness, and labels that never run into the next scene."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from narrate.review.picture import (
    BOTTOM,
    BOUNDARY,
    HEIGHT,
    LEFT,
    LOUDNESS,
    RIGHT,
    TOP,
    WAVE,
    WIDTH,
    timeline_png,
    y_of_lufs,
)
from narrate.track.timeline import LoudnessResult, Timeline, TimelineSegment

RATE = 24000


def small_timeline() -> tuple[Timeline, np.ndarray]:
    """Three scenes of 2, 3 and 1 s, each a tone for its first half and silence after."""
    scenes = [("open", 0, 2), ("a-very-long-segment-name-that-cannot-fit", 2, 5), ("close", 5, 6)]
    track = np.zeros(6 * RATE, dtype=np.float32)
    segments = []
    for sid, start, end in scenes:
        spoken = (end - start) * RATE // 2
        t = np.arange(spoken) / RATE
        track[start * RATE : start * RATE + spoken] = 0.5 * np.sin(2 * np.pi * 220 * t)
        segments.append(
            TimelineSegment(
                id=sid, text=sid, start_sample=start * RATE, end_sample=start * RATE + spoken,
                scene_end_sample=end * RATE, clip_samples=spoken,
                padding_samples=(end - start) * RATE - spoken,
                start_seconds=start, end_seconds=start + spoken / RATE, scene_end_seconds=end,
                start_frame=start * 30, scene_end_frame=end * 30, cache_key="0" * 64, cache_hit=False,
                engine="dev", voice="dev",
            )
        )  # fmt: skip
    loudness = LoudnessResult(-16.0, -16.0, 0.0, -16.0, -1.0, False)
    timeline = Timeline(
        title="t", sample_rate=RATE, fps="30", total_samples=len(track), total_seconds=6.0, total_frames=180,
        engine="dev", voice="dev", model_id="m", model_revision="r", disclosure="d", loudness=loudness,
        segments=segments,
    )  # fmt: skip
    return timeline, track


def picture() -> tuple[Timeline, np.ndarray, np.ndarray]:
    timeline, track = small_timeline()
    image = Image.open(io.BytesIO(timeline_png(timeline, track)))
    assert image.format == "PNG" and image.size == (WIDTH, HEIGHT)
    return timeline, track, np.asarray(image.convert("RGB"))


def x_of(seconds: float) -> int:
    return LEFT + round(seconds / 6.0 * (WIDTH - LEFT - RIGHT))


def test_each_segment_starts_at_a_drawn_scene_boundary() -> None:
    _, _, pixels = picture()
    middle_row = pixels[TOP + 5]
    red_columns = [x for x in range(WIDTH) if tuple(middle_row[x]) == BOUNDARY]
    assert red_columns == [x_of(0), x_of(2), x_of(5)]


def test_the_waveform_is_where_the_clips_are_and_the_loudness_line_where_the_track_is_loud() -> None:
    _, _, pixels = picture()
    middle = TOP + (HEIGHT - BOTTOM - TOP) // 2
    wave_columns = {x for x in range(WIDTH) if tuple(pixels[middle - 30, x]) == WAVE}
    assert x_of(0.5) in wave_columns and x_of(2.7) in wave_columns  # inside the spoken halves
    assert x_of(1.5) not in wave_columns and x_of(4.5) not in wave_columns  # the silent padding
    # at 3.5 s the 3 s window holds 1.5 s of a 220 Hz sine (K-weighting adds ~0 dB there): half its energy
    expected = -0.691 + 10 * np.log10(0.5**2 / 2 * 0.5)
    column = pixels[:, x_of(3.5)]
    loudness_rows = [y for y in range(HEIGHT) if tuple(column[y]) == LOUDNESS]
    assert loudness_rows and abs(np.median(loudness_rows) - y_of_lufs(expected)) <= 7  # 1 LU


def test_a_label_too_long_for_its_scene_is_cut_to_fit() -> None:
    _, _, pixels = picture()
    label_band = pixels[TOP - 16 : TOP - 2]
    dark = [x for x in range(WIDTH) if (label_band[:, x] < 100).all(axis=-1).any()]
    second_scene = [x for x in dark if x_of(2) < x < x_of(5)]
    assert second_scene and max(second_scene) < x_of(5)  # nothing written across the next boundary
