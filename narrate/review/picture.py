"""The timeline picture (``timeline.png``): the track's waveform, each scene as a band with its segment's
label, the scene boundaries where every segment starts, and the short-term loudness against the target.
The same picture is in the review page and the Prefect report."""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from narrate.track.audio import short_term_loudness
from narrate.track.timeline import Timeline

WIDTH, HEIGHT = 1200, 340
LEFT, RIGHT, TOP, BOTTOM = 48, 48, 34, 28  # plot margins: loudness scale left, LUFS labels right
LUFS_FLOOR, LUFS_CEILING = -40.0, 0.0
BACKGROUND, BAND_A, BAND_B = (255, 255, 255), (242, 245, 250), (230, 236, 245)
WAVE, PADDING_WAVE = (52, 86, 140), (160, 175, 200)
BOUNDARY, LOUDNESS, TARGET, TEXT = (200, 40, 40), (230, 130, 0), (230, 130, 0), (40, 40, 40)


def timeline_png(timeline: Timeline, track: np.ndarray) -> bytes:
    """The picture of ``track`` (float samples at the timeline's rate) laid out as ``timeline`` says."""
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=12)
    plot_width = WIDTH - LEFT - RIGHT
    total = max(timeline.total_samples, 1)

    def x_of(sample: int) -> int:
        return LEFT + round(sample / total * plot_width)

    bottom = HEIGHT - BOTTOM
    for index, segment in enumerate(timeline.segments):
        band = BAND_A if index % 2 == 0 else BAND_B
        left, right = x_of(segment.start_sample), x_of(segment.scene_end_sample)
        draw.rectangle((left, TOP, right, bottom), fill=band)
        _label(draw, font, segment.id, left + 3, TOP - 16, right - left - 4)
    _waveform(draw, timeline, track, x_of, plot_width)
    for segment in timeline.segments:  # every segment starts exactly at its scene boundary
        x = x_of(segment.start_sample)
        draw.line((x, TOP - 2, x, bottom), fill=BOUNDARY, width=1)
    _loudness(draw, font, timeline, track, x_of)
    _time_axis(draw, font, timeline, x_of)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _label(
    draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont, text: str, x: int, y: int, room: int
) -> None:
    """``text`` cut to fit ``room`` pixels (nothing when not even one letter and an ellipsis fit)."""
    while text and draw.textlength(text, font=font) > room:
        text = text[:-2] + "…" if len(text) > 2 else ""
    if text:
        draw.text((x, y), text, fill=TEXT, font=font)


def _waveform(
    draw: ImageDraw.ImageDraw, timeline: Timeline, track: np.ndarray, x_of: Callable[[int], int], width: int
) -> None:
    middle = TOP + (HEIGHT - BOTTOM - TOP) // 2
    half = (HEIGHT - BOTTOM - TOP) // 2 - 4
    columns = np.array_split(np.asarray(track, dtype=np.float32), width) if len(track) else []
    spoken = np.zeros(width, dtype=bool)  # columns inside a spoken clip (the rest is padding)
    for segment in timeline.segments:
        first = segment.start_sample * width // max(timeline.total_samples, 1)
        last = max(first + 1, segment.end_sample * width // max(timeline.total_samples, 1))
        spoken[first:last] = True
    for column, samples in enumerate(columns):
        if not len(samples):
            continue
        high, low = float(samples.max()), float(samples.min())
        x = LEFT + column
        colour = WAVE if spoken[column] else PADDING_WAVE
        draw.line((x, middle - round(high * half), x, middle - round(low * half)), fill=colour)


def y_of_lufs(lufs: float) -> int:
    share = (min(max(lufs, LUFS_FLOOR), LUFS_CEILING) - LUFS_FLOOR) / (LUFS_CEILING - LUFS_FLOOR)
    return round(HEIGHT - BOTTOM - share * (HEIGHT - BOTTOM - TOP))


def _loudness(
    draw: ImageDraw.ImageDraw,
    font: ImageFont.ImageFont,
    timeline: Timeline,
    track: np.ndarray,
    x_of: Callable[[int], int],
) -> None:
    """Short-term loudness (3 s windows, EBU Tech 3341) as a line, the integrated target dashed."""
    target = timeline.loudness.target_lufs
    y = y_of_lufs(target)
    for x in range(LEFT, WIDTH - RIGHT, 8):
        draw.line((x, y, min(x + 4, WIDTH - RIGHT), y), fill=TARGET)
    draw.text((WIDTH - RIGHT + 4, y - 7), f"{target:g}", fill=TARGET, font=font)
    draw.text((WIDTH - RIGHT + 4, TOP - 16), "LUFS", fill=TARGET, font=font)
    for lufs in (LUFS_FLOOR, -30.0, -20.0, -10.0):
        draw.text((6, y_of_lufs(lufs) - 7), f"{lufs:g}", fill=TARGET, font=font)
    centres, values = short_term_loudness(track, timeline.sample_rate, points=WIDTH - LEFT - RIGHT)
    points = [(x_of(int(c)), y_of_lufs(v)) for c, v in zip(centres, values, strict=True) if math.isfinite(v)]
    if len(points) > 1:
        draw.line(points, fill=LOUDNESS, width=2)


def _time_axis(
    draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont, timeline: Timeline, x_of: Callable[[int], int]
) -> None:
    seconds = timeline.total_seconds
    step = next((s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800) if seconds / s <= 12), 3600)
    y = HEIGHT - BOTTOM
    draw.line((LEFT, y, WIDTH - RIGHT, y), fill=TEXT)
    for tick in range(0, int(seconds) + 1, step):
        x = x_of(round(tick * timeline.sample_rate))
        draw.line((x, y, x, y + 4), fill=TEXT)
        label = f"{tick // 60}:{tick % 60:02d}" if seconds >= 60 else f"{tick} s"
        draw.text((x - 8, y + 6), label, fill=TEXT, font=font)
