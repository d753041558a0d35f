"""A generated stand-in for a screen recording: one coloured scene per mark, its name, frame number and
time drawn in a bitmap font, a box that moves during the scene's action and stops for its hold, and
the frame number as a 16-bit barcode along the bottom edge (read back with :func:`read_frame_number`).

Nothing binary is committed: :func:`ensure_demo_video` makes the example's video from its marks when it
is missing.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from narrate.errors import VideoError
from narrate.files import write_atomic
from narrate.video.ffmpeg import Ffmpeg
from narrate.video.marks import SceneMarks, action_frames, load_marks, marks_video_path, source_frame

BARCODE_BITS = 16

_GLYPHS = {
    "A": "01110 10001 10001 11111 10001 10001 10001", "B": "11110 10001 10001 11110 10001 10001 11110",
    "C": "01110 10001 10000 10000 10000 10001 01110", "D": "11110 10001 10001 10001 10001 10001 11110",
    "E": "11111 10000 10000 11110 10000 10000 11111", "F": "11111 10000 10000 11110 10000 10000 10000",
    "G": "01110 10001 10000 10111 10001 10001 01111", "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110", "J": "00111 00010 00010 00010 00010 10010 01100",
    "K": "10001 10010 10100 11000 10100 10010 10001", "L": "10000 10000 10000 10000 10000 10000 11111",
    "M": "10001 11011 10101 10101 10001 10001 10001", "N": "10001 10001 11001 10101 10011 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110", "P": "11110 10001 10001 11110 10000 10000 10000",
    "Q": "01110 10001 10001 10001 10101 10010 01101", "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110", "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110", "V": "10001 10001 10001 10001 10001 01010 00100",
    "W": "10001 10001 10001 10101 10101 10101 01010", "X": "10001 10001 01010 00100 01010 10001 10001",
    "Y": "10001 10001 01010 00100 00100 00100 00100", "Z": "11111 00001 00010 00100 01000 10000 11111",
    "0": "01110 10001 10011 10101 11001 10001 01110", "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111", "3": "11111 00010 00100 00010 00001 10001 01110",
    "4": "00010 00110 01010 10010 11111 00010 00010", "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110", "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110", "9": "01110 10001 10001 01111 00001 00010 01100",
    " ": "00000 00000 00000 00000 00000 00000 00000", "-": "00000 00000 00000 11111 00000 00000 00000",
    ".": "00000 00000 00000 00000 00000 01100 01100", ":": "00000 01100 01100 00000 01100 01100 00000",
    "/": "00001 00001 00010 00100 01000 10000 10000", "_": "00000 00000 00000 00000 00000 00000 11111",
}  # fmt: skip
_FONT = {c: np.array([[b == "1" for b in row] for row in g.split()], dtype=bool) for c, g in _GLYPHS.items()}
_PALETTE = [(38, 70, 120), (30, 105, 90), (120, 60, 40), (90, 50, 120), (40, 95, 130), (120, 95, 30),
            (70, 110, 50), (110, 45, 80)]  # fmt: skip


def text_mask(text: str, scale: int) -> np.ndarray:
    """The text in the 5x7 bitmap font (one column between letters), each pixel ``scale`` wide."""
    glyphs = [_FONT.get(c, _FONT["-"]) for c in text.upper()]
    spaced = [np.pad(g, ((0, 0), (0, 1))) for g in glyphs] or [np.zeros((7, 1), dtype=bool)]
    return np.kron(np.hstack(spaced), np.ones((scale, scale), dtype=bool)).astype(bool)


def draw_text(frame: np.ndarray, text: str, x: int, y: int, scale: int, color: tuple[int, int, int]) -> None:
    mask = text_mask(text, scale)
    h = min(mask.shape[0], frame.shape[0] - y)
    w = min(mask.shape[1], frame.shape[1] - x)
    if h > 0 and w > 0:
        frame[y : y + h, x : x + w][mask[:h, :w]] = color


def barcode_height(height: int) -> int:
    return max(8, height // 12)


def draw_barcode(frame: np.ndarray, number: int) -> None:
    """``number`` as BARCODE_BITS black/white cells along the bottom edge, most significant bit first."""
    height, width = frame.shape[:2]
    cell, bar = width // BARCODE_BITS, barcode_height(height)
    for bit in range(BARCODE_BITS):
        on = (number >> (BARCODE_BITS - 1 - bit)) & 1
        frame[height - bar :, bit * cell : (bit + 1) * cell] = 255 if on else 0


def read_frame_number(luma: np.ndarray) -> int:
    """The barcode of a decoded frame's luma plane (any size the barcode survives at) as an integer."""
    height, width = luma.shape
    cell, bar = width // BARCODE_BITS, barcode_height(height)
    number = 0
    for bit in range(BARCODE_BITS):
        block = luma[
            height - bar + bar // 4 : height - bar // 4, bit * cell + cell // 4 : (bit + 1) * cell - cell // 4
        ]
        number = (number << 1) | int(block.mean() > 128)
    return number


@dataclass(frozen=True)
class SceneCard:
    """What a scene's frames show: its place among the scenes, its id, and how long its action lasts."""

    scene: int  # 0-based
    scene_count: int
    name: str
    action: int  # frames


def draw_frame(number: int, card: SceneCard, offset: int, fps: Fraction, size: tuple[int, int]) -> np.ndarray:
    """One RGB frame ``number``: ``offset`` frames into the scene of ``card``."""
    scene, scene_count, name, action = card.scene, card.scene_count, card.name, card.action
    width, height = size
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:] = _PALETTE[scene % len(_PALETTE)]
    scale = max(2, height // 90)
    white, pale = (255, 255, 255), (200, 220, 255)
    draw_text(frame, f"SCENE {scene + 1}/{scene_count}", scale * 4, scale * 4, scale, pale)
    name_scale = max(1, min(scale * 2, (width - scale * 8) // (6 * max(len(name), 1))))
    draw_text(frame, name, scale * 4, scale * 14, name_scale, white)
    draw_text(frame, f"FRAME {number:05d}", scale * 4, scale * 32, scale * 2, white)
    draw_text(frame, f"T {float(number / fps):06.2f} S", scale * 4, scale * 49, scale, pale)
    holding = offset >= action
    draw_text(frame, "HOLD" if holding else "ACTION", scale * 4, scale * 58, scale, pale)
    track = width - scale * 20
    x = scale * 4 + track * min(offset, action - 1) // max(action - 1, 1)
    top = height - barcode_height(height) - scale * 14
    frame[top : top + scale * 8, x : x + scale * 10] = (250, 200, 60) if not holding else (180, 180, 180)
    draw_barcode(frame, number)
    return frame


def make_demo_video(
    marks: SceneMarks,
    out_path: str | Path,
    fps: Fraction = Fraction(30),
    size: tuple[int, int] = (960, 540),
    ffmpeg: Ffmpeg | None = None,
    preset: str = "veryfast",
) -> Path:
    """Draw every scene of ``marks`` (which must give ``end_seconds``) into an H.264 MP4, atomically."""
    if marks.end_seconds is None:
        raise VideoError("the demo video's marks need end_seconds: how long the generated video lasts")
    ff = ffmpeg or Ffmpeg()
    actions = action_frames(marks, fps)
    bounds = [source_frame(s.start_seconds, fps) for s in marks.scenes] + [
        source_frame(marks.end_seconds, fps)
    ]
    if bounds[0] != 0:
        raise VideoError("the demo video's first scene must start at 0")
    width, height = size

    def encode(tmp: Path) -> None:
        args = ["-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
                "-framerate", str(fps), "-i", "-", "-c:v", "libx264", "-preset", preset, "-crf", "20",
                "-pix_fmt", "yuv420p", "-f", "mp4", str(tmp)]  # fmt: skip
        log = tmp.with_suffix(".log")
        with log.open("wb") as errors:
            process = ff.popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors)
            assert process.stdin is not None
            try:
                for scene, mark in enumerate(marks.scenes):
                    card = SceneCard(scene, len(marks.scenes), mark.id, actions[mark.id])
                    for number in range(bounds[scene], bounds[scene + 1]):
                        frame = draw_frame(number, card, number - bounds[scene], fps, size)
                        process.stdin.write(frame.tobytes())
                process.stdin.close()
            except BrokenPipeError:
                pass
            status = process.wait()
        message = log.read_text(errors="replace")[-400:]
        log.unlink(missing_ok=True)
        if status != 0:
            raise VideoError(f"ffmpeg could not encode the demo video: {message}")

    return write_atomic(Path(out_path), encode)


def ensure_demo_video(marks_path: str | Path, segment_ids: list[str], fps: Fraction = Fraction(30)) -> Path:
    """The example's video named by its marks' ``video:``, generated first when it is missing."""
    marks = load_marks(marks_path, segment_ids)
    video = marks_video_path(marks, marks_path)
    if video is None:
        raise VideoError(f"{marks_path}: names no `video:` to generate")
    if not video.exists():
        make_demo_video(marks, video, fps)
    return video
