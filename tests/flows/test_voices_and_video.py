"""One recording, several voices: named voices render into their own folders under one endpoint wake,
and the recording is re-timed to each narration, every scene measured in the output."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from flows.render_narration import render_narration
from flows.retry_failed_segments import retry_failed_segments
from narrate.aws.local import LocalAws
from narrate.cli.main import main as narrate_main
from narrate.errors import ScriptError
from narrate.manifest import RenderManifest
from narrate.settings import get_settings
from narrate.video import load_marks
from narrate.video.demo import make_demo_video
from tests.conftest import write_script
from tests.flows.test_render_narration import endpoint_instances
from tests.flows.test_retry_failed_segments import timeline_positions

pytestmark = pytest.mark.usefixtures("prefect_server", "embedded_aws")

SCRIPT = """
title: Three scenes
voice: {engine: dev, language: en}
voices:
  slow: {engine: dev, language: en, rate_wpm: 120}
  brisk: {engine: dev, language: en, rate_wpm: 260, pitch: 30}
output: {fps: 25, formats: [wav]}
segments:
  - {id: open, text: "A short opening line.", pause_after_seconds: 0.2}
  - id: work
    text: Now the long middle part, where most of the talking happens, slowly.
    pause_after_seconds: 0.2
  - {id: close, text: "Done.", min_seconds: 1}
"""
# scene 1: 2 s of action then 2 s of hold; scene 2: 1 s, all action; scene 3: 3 s, action 1 s
MARKS = """
video: rec.mp4
end_seconds: 8
scenes:
  - {id: open, start_seconds: 0, action_end_seconds: 2}
  - {id: work, start_seconds: 4}
  - {id: close, start_seconds: 5, action_end_seconds: 6}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    script = write_script(tmp_path, SCRIPT, "three.yaml")
    marks = tmp_path / "three.marks.yaml"
    marks.write_text(MARKS)
    make_demo_video(
        load_marks(marks, ["open", "work", "close"]), tmp_path / "rec.mp4", Fraction(25), (160, 96)
    )
    return script


def test_two_voices_one_wake_each_in_its_folder_with_its_own_timeline(
    project: Path, tmp_path: Path, embedded_aws: LocalAws
) -> None:
    emulator: Any = embedded_aws.emulator
    name = get_settings().endpoint_name
    result = render_narration(script=str(project), out_dir=str(tmp_path / "out"), voices=["slow", "brisk"])
    assert set(result["voices"]) == {"slow", "brisk"}
    assert emulator.launches[name] == 1  # one cold start for both voices
    timelines = {
        v: json.loads((tmp_path / "out" / v / "timeline.json").read_text()) for v in ("slow", "brisk")
    }
    assert [s["id"] for s in timelines["slow"]["segments"]] == [
        s["id"] for s in timelines["brisk"]["segments"]
    ]
    slow, brisk = (t["segments"][1]["clip_samples"] for t in timelines.values())
    assert slow > brisk * 1.5  # each voice's timeline is its own
    for voice in ("slow", "brisk"):
        manifest = RenderManifest.load(tmp_path / "out" / voice / "manifest.json")
        assert manifest.voice_name == voice and manifest.state == "completed"
    assert endpoint_instances() == (0, 0)
    again = render_narration(script=str(project), out_dir=str(tmp_path / "again"), voices=["brisk"])
    assert (
        again["voices"]["brisk"]["synthesised"] == 0 and emulator.launches[name] == 1
    )  # all cached: no wake


def test_an_unknown_voice_is_refused_before_anything_runs(project: Path, tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match="voice 'nobody' is not defined; the script defines: brisk, slow"):
        render_narration(script=str(project), out_dir=str(tmp_path / "out"), voices=["slow", "nobody"])
    assert not (tmp_path / "out" / "slow").exists()


def test_narrate_video_gives_each_voice_an_mp4_locked_to_its_narration(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    marks = tmp_path / "three.marks.yaml"
    code = narrate_main(
        ["video", str(tmp_path / "rec.mp4"), "--marks", str(marks), "--voice", "slow", "--voice", "brisk",
         "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    lengths = {}
    for voice in ("slow", "brisk"):
        timeline = json.loads((out / voice / "timeline.json").read_text())
        report = json.loads((out / voice / "video.report.json").read_text())
        assert (out / voice / "video.mp4").stat().st_size > 0
        assert [s["id"] for s in report["scenes"]] == ["open", "work", "close"]
        for scene, segment in zip(report["scenes"], timeline["segments"], strict=True):
            assert abs(scene["measured_frames"] - (segment["scene_end_frame"] - segment["start_frame"])) <= 1
            assert abs(scene["measured_start_frame"] - segment["start_frame"]) <= 1
        # the action is never cut: each scene lasts at least its action (2 s, 1 s, 1 s at 25 fps)
        frames = [s["scene_end_frame"] - s["start_frame"] for s in timeline["segments"]]
        assert frames[0] >= 50 and frames[1] >= 25 and frames[2] >= 25
        assert report["chapters"] == 3
        lengths[voice] = timeline["total_frames"]
        manifest = RenderManifest.load(out / voice / "manifest.json")
        assert manifest.outputs["video"] == str(out / voice / "video.mp4") and manifest.state == "completed"
    assert lengths["slow"] > lengths["brisk"]  # two voices, two different cuts of one recording


def test_a_script_that_names_its_recording_gets_the_mp4_from_every_render(
    project: Path, tmp_path: Path
) -> None:
    project.write_text(project.read_text() + "video: {marks: three.marks.yaml}\n")
    result = render_narration(script=str(project), out_dir=str(tmp_path / "out"))
    report = json.loads((tmp_path / "out" / "video.report.json").read_text())
    assert result["outputs"]["video"] == str(tmp_path / "out" / "video.mp4")
    assert report["max_drift_frames"] <= 1 and report["chapters"] == 3


def failed_render_with_a_recording(project: Path, out: Path, embedded_aws: LocalAws, failing: str) -> None:
    """The script names its recording; ``failing`` fails once, so the render fails before the video."""
    emulator: Any = embedded_aws.emulator
    project.write_text(project.read_text() + "video: {marks: three.marks.yaml}\n")
    emulator.fail_segments_once({failing})
    assert render_narration(script=str(project), out_dir=str(out), return_state=True).is_failed()
    assert not (out / "video.mp4").exists()


def test_a_retry_re_times_the_recording_and_keeps_each_action_whole(
    project: Path, tmp_path: Path, embedded_aws: LocalAws
) -> None:
    out, clean = tmp_path / "out", tmp_path / "clean"
    failed_render_with_a_recording(project, out, embedded_aws, "open")
    manifest = RenderManifest.load(out / "manifest.json")
    assert manifest.video is not None and manifest.video.marks.endswith("three.marks.yaml")
    assert manifest.min_seconds == {"open": 2.0, "work": 1.0, "close": 1.0}

    result = retry_failed_segments(manifest=str(out / "manifest.json"))
    assert result["retried"] == ["open"] and result["outputs"]["video"] == str(out / "video.mp4")
    assert json.loads((out / "video.report.json").read_text())["max_drift_frames"] <= 1
    render_narration(script=str(project), out_dir=str(clean))
    assert timeline_positions(out) == timeline_positions(clean)


def test_a_retry_whose_recording_is_gone_still_lays_the_narration_out_for_it(
    project: Path, tmp_path: Path, embedded_aws: LocalAws
) -> None:
    out, clean = tmp_path / "out", tmp_path / "clean"
    failed_render_with_a_recording(project, out, embedded_aws, "work")
    render_narration(script=str(project), out_dir=str(clean))  # with the recording, for comparison
    (tmp_path / "rec.mp4").unlink()

    result = retry_failed_segments(manifest=str(out / "manifest.json"))
    assert result["retried"] == ["work"] and "video" not in result["outputs"]
    assert timeline_positions(out) == timeline_positions(clean)
