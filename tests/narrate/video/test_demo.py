"""The example's placeholder recording: every frame carries its number in a barcode that survives
encoding, and the scene it belongs to."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from narrate.video import Ffmpeg
from narrate.video.demo import SceneCard, draw_frame, read_frame_number
from tests.narrate.video.recording import SIZE, decoded_frame_numbers


def luma(rgb: np.ndarray) -> np.ndarray:
    return (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).astype(np.uint8)


def test_a_drawn_frame_reads_back_its_number() -> None:
    card = SceneCard(scene=2, scene_count=4, name="click", action=24)
    for number in (0, 1, 90, 1234, 65535):
        frame = draw_frame(number, card, offset=3, fps=Fraction(30000, 1001), size=SIZE)
        assert frame.shape == (SIZE[1], SIZE[0], 3)
        assert read_frame_number(luma(frame)) == number


def test_the_encoded_recording_shows_every_frame_in_order(
    recording: tuple[Path, Path], ffmpeg: Ffmpeg
) -> None:
    numbers = decoded_frame_numbers(ffmpeg, recording[0])
    assert numbers == list(range(len(numbers))) and len(numbers) == 180  # 6 s at 29.97 fps
