"""An independent BS.1770 meter for the tests: ffmpeg's ``ebur128`` filter (libavfilter's own
implementation, true peak by oversampling to 192 kHz: 8x at 24 kHz), from the ffmpeg binary of the
imageio-ffmpeg wheel. It reports tenths of a LU and of a dB."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg


@dataclass(frozen=True)
class Measured:
    integrated_lufs: float
    true_peak_dbtp: float


def ebur128(path: Path) -> Measured:
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path),
               "-filter_complex", "ebur128=peak=true:framelog=quiet", "-f", "null", "-"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    summary = result.stderr[result.stderr.rindex("Summary:") :]
    loudness = re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary)
    peak = re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    assert loudness and peak, summary
    return Measured(float(loudness.group(1)), float(peak.group(1)))
