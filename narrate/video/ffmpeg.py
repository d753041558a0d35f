"""The ffmpeg binary of the ``imageio-ffmpeg`` wheel as one small client (probe, packets, chapters,
streams, decoded audio), so tests can hand the re-timing a wrapper instead of patching subprocess."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import numpy as np

from narrate.errors import VideoError

_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_VIDEO_SIZE = re.compile(r"Stream #\d+:\d+\S*: Video: .*?, (\d{2,5})x(\d{2,5})[ ,\[]")
_VIDEO_FPS = re.compile(r"Stream #\d+:\d+\S*: Video: .*?, ([\d.]+(?:k)?) fps")
_STREAM = re.compile(r"Stream #\d+:(\d+)\S*: (Video|Audio|Subtitle|Data): (\w+)")
_TIMEBASE = re.compile(r"^#tb (\d+): (\d+)/(\d+)")


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    seconds: float
    fps: float | None  # the container's nominal rate; the re-timing resamples to the timeline's anyway


@dataclass(frozen=True)
class Packet:
    pts: int  # in the stream's time base
    duration: int
    size: int
    crc: str
    key: bool


@dataclass(frozen=True)
class PacketList:
    time_base: Fraction
    packets: list[Packet]

    def frame_positions(self, fps: Fraction) -> list[Fraction]:
        """Each packet's presentation time in frames of ``fps`` (integers on a constant-rate track)."""
        return [p.pts * self.time_base * fps for p in self.packets]


@dataclass(frozen=True)
class Chapter:
    start: Fraction  # seconds
    end: Fraction
    title: str


class Ffmpeg:
    """Runs the bundled ffmpeg; every failure is a VideoError quoting ffmpeg's own message."""

    def __init__(self, exe: str | None = None, timeout_seconds: float = 3600) -> None:
        if exe is None:
            import imageio_ffmpeg

            exe = imageio_ffmpeg.get_ffmpeg_exe()
        self.exe = exe
        self.timeout_seconds = timeout_seconds

    def command(self, args: list[str]) -> list[str]:
        return [self.exe, "-nostdin", "-hide_banner", "-y", *args]

    def run(self, args: list[str], what: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        result = subprocess.run(
            self.command(args), capture_output=True, timeout=self.timeout_seconds, check=False
        )
        if check and result.returncode != 0:
            raise VideoError(f"ffmpeg could not {what}: {_tail(result.stderr)}")
        return result

    def popen(self, args: list[str], stdin: int, stdout: int, stderr: IO[Any]) -> subprocess.Popen:
        """A long-running ffmpeg: a decoder to read frames from or an encoder to write frames to."""
        return subprocess.Popen(self.command(args), stdin=stdin, stdout=stdout, stderr=stderr)

    def encoders(self) -> set[str]:
        listing = self.run(["-encoders"], "list its encoders").stdout.decode(errors="replace")
        return {line.split()[1] for line in listing.splitlines() if re.match(r"^ [VAS][.A-Z]{5} \S", line)}


def describe(ff: Ffmpeg, path: Path) -> str:
    """ffmpeg's description of a media file (its stderr for ``-i path`` with no output)."""
    if not Path(path).is_file():
        raise VideoError(f"{path}: file not found; check the path")
    text = ff.run(["-i", str(path)], "read the file", check=False).stderr.decode(errors="replace")
    if "Input #0" not in text:
        raise VideoError(f"{path}: ffmpeg cannot read it as a media file: {_tail(text.encode())}")
    return text


def probe_video(ff: Ffmpeg, path: Path) -> VideoInfo:
    text = describe(ff, path)
    duration, size = _DURATION.search(text), _VIDEO_SIZE.search(text)
    if size is None:
        raise VideoError(f"{path}: has no video stream")
    if duration is None:
        raise VideoError(f"{path}: ffmpeg reports no duration; remux it (ffmpeg -i in -c copy out.mp4)")
    hours, minutes, seconds = duration.groups()
    fps = _VIDEO_FPS.search(text)
    rate = None
    if fps:
        value = fps.group(1)
        rate = float(value[:-1]) * 1000 if value.endswith("k") else float(value)
    return VideoInfo(
        width=int(size.group(1)),
        height=int(size.group(2)),
        seconds=int(hours) * 3600 + int(minutes) * 60 + float(seconds),
        fps=rate,
    )


def stream_codecs(ff: Ffmpeg, path: Path) -> list[tuple[str, str]]:
    """(kind, codec) of each stream, in order: ``[("video", "h264"), ("audio", "aac"), ...]``."""
    return codecs_described(describe(ff, path))


def codecs_described(description: str) -> list[tuple[str, str]]:
    """:func:`stream_codecs` of a file from its :func:`describe` text."""
    return [(kind.lower(), codec) for _, kind, codec in _STREAM.findall(description)]


def packets(ff: Ffmpeg, path: Path, stream: str = "v:0") -> PacketList:
    """The stream's packets as stored (demuxed, not decoded): pts, duration, size, checksum, key flag."""
    args = ["-loglevel", "error", "-i", str(path), "-map", f"0:{stream}", "-c", "copy", "-f", "framecrc", "-"]
    text = ff.run(args, f"list the packets of {Path(path).name}").stdout.decode()
    time_base: Fraction | None = None
    found: list[Packet] = []
    for line in text.splitlines():
        if match := _TIMEBASE.match(line):
            time_base = Fraction(int(match.group(2)), int(match.group(3)))
        elif line and not line.startswith("#"):
            fields = [f.strip() for f in line.split(",")]
            flags = next((f for f in fields[6:] if f.startswith("F=")), None)
            key = flags is None or bool(int(flags[2:], 16) & 1)  # framecrc omits F= for plain keyframes
            found.append(Packet(int(fields[2]), int(fields[3]), int(fields[4]), fields[5], key))
    if time_base is None:
        raise VideoError(f"{path}: no stream {stream} to measure")
    return PacketList(time_base, found)


def file_metadata(ff: Ffmpeg, path: Path) -> tuple[dict[str, str], list[Chapter]]:
    """The file's global metadata (title, comment, ...) and its chapters, as ffmpeg reads them."""
    text = ff.run(
        ["-loglevel", "error", "-i", str(path), "-f", "ffmetadata", "-"], "read the metadata"
    ).stdout.decode()
    head, *blocks = re.split(r"^\[CHAPTER\]$", text, flags=re.MULTILINE)
    found: list[Chapter] = []
    for block in blocks:
        fields = _ffmetadata_fields(block)
        base = Fraction(fields.get("TIMEBASE", "1/1000"))
        found.append(Chapter(int(fields["START"]) * base, int(fields["END"]) * base, fields.get("title", "")))
    return _ffmetadata_fields(head), found


def chapters(ff: Ffmpeg, path: Path) -> list[Chapter]:
    return file_metadata(ff, path)[1]


def _ffmetadata_fields(block: str) -> dict[str, str]:
    """``key=value`` lines of an ffmetadata block; a backslash escapes the next character (newlines too)."""
    fields: dict[str, str] = {}
    key: str | None = None
    text = ""
    chars = iter(block + "\n")
    for char in chars:
        if char == "\\":
            text += next(chars, "")
        elif char == "=" and key is None:
            key, text = text, ""
        elif char == "\n":
            if key is not None and not key.startswith((";", "#")):
                fields[key] = text
            key, text = None, ""
        else:
            text += char
    return fields


def decode_audio(ff: Ffmpeg, path: Path, sample_rate: int) -> np.ndarray:
    """The first audio stream decoded as a player plays it (edit lists applied), mono float32."""
    args = ["-loglevel", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", str(sample_rate),
            "-f", "f32le", "-"]  # fmt: skip
    return np.frombuffer(ff.run(args, "decode the audio").stdout, dtype="<f4")


def ffmetadata_escape(text: str) -> str:
    return re.sub(r"([=;#\\\n])", r"\\\1", text)


def _tail(stderr: bytes, limit: int = 600) -> str:
    text = stderr.decode(errors="replace").strip()
    return text[-limit:] if text else "(no message)"
