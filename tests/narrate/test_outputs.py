"""A render folder read back through one module: its files by name, its timeline and manifest typed."""

from __future__ import annotations

from pathlib import Path

from narrate.outputs import MANIFEST, OUTPUT_FILES, RenderFolder
from narrate.track.timeline import LoudnessResult, Timeline


def silent_timeline() -> Timeline:
    loudness = LoudnessResult(-16.0, float("-inf"), 0.0, float("-inf"), float("-inf"), False)
    return Timeline(
        title="t", sample_rate=24000, fps="30", total_samples=0, total_seconds=0.0, total_frames=0,
        engine="dev", voice="", model_id="m", model_revision="r", disclosure="d", loudness=loudness,
        segments=[],
    )  # fmt: skip


def test_a_silent_tracks_timeline_reads_back(tmp_path: Path) -> None:
    """JSON has no -inf: a silent track's loudness is written as null and read back as None."""
    folder = RenderFolder(tmp_path)
    folder.timeline_path.write_text(silent_timeline().model_dump_json())
    loudness = folder.timeline().loudness
    assert (loudness.measured_lufs, loudness.output_lufs, loudness.true_peak_dbtp) == (None, None, None)


def test_every_output_has_one_name() -> None:
    names = [*OUTPUT_FILES.values(), MANIFEST]
    assert len(set(names)) == len(names)
    assert RenderFolder(Path("r")).file("wav") == Path("r/narration.wav")
    assert RenderFolder(Path("r")).manifest_path == Path("r/manifest.json")
