"""Scene marks: validated whole, the action lengths they give, the example's marks."""

from __future__ import annotations

from pathlib import Path

import pytest

from narrate.errors import MarksError
from narrate.video import (
    action_seconds,
    load_marks,
    parse_marks,
)
from tests.narrate.video.recording import FPS, IDS, SOURCE


def test_action_seconds_are_the_min_seconds_that_keep_every_action() -> None:
    marks = parse_marks({"end_seconds": 6, "scenes": [
        {"id": i, "start_seconds": s, **({"action_end_seconds": a} if a else {})}
        for i, (s, a, _) in zip(IDS, SOURCE, strict=True)
    ]}, IDS)  # fmt: skip
    seconds = action_seconds(marks, FPS)
    assert seconds == pytest.approx(
        {"open": 0.5005, "type": 1.001, "click": 0.8008, "close": 0.5005}, abs=1e-6
    )
    assert all(v * FPS >= round(v * FPS) - 1e-9 for v in seconds.values())  # never a frame short


def test_marks_errors_name_the_field_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(MarksError) as caught:
        parse_marks(
            {"scenes": [
                {"id": "open", "start_seconds": 0, "action_end_seconds": 2.5},
                {"id": "type", "start_seconds": 2},
                {"id": "clik", "start_seconds": 1.5},
                {"id": "close", "start_seconds": "soon"},
            ]},
            IDS,
            video_seconds=6,
        )  # fmt: skip
    text = str(caught.value)
    assert "scenes[3] (id 'close').start_seconds: 'soon' is not a time" in text
    with pytest.raises(MarksError) as caught:
        parse_marks(
            {"scenes": [
                {"id": "open", "start_seconds": 0, "action_end_seconds": 2.5},
                {"id": "type", "start_seconds": 2},
                {"id": "clik", "start_seconds": 1.5},
                {"id": "close", "start_seconds": 7},
            ]},
            IDS,
            video_seconds=6,
        )  # fmt: skip
    text = str(caught.value)
    assert "no mark for segment(s) click" in text and "clik not in the script" in text
    assert "action_end_seconds: 2.5 is after the scene's end (2)" in text
    assert "scenes[1] (id 'type').start_seconds: 2 is not before the next scene's start (1.5)" in text
    assert "start_seconds: 7 is at or after the end of the video" in text
    with pytest.raises(MarksError, match="3 boundaries for 4 script segments"):
        parse_marks([0, 1, 2], IDS)
    marks = parse_marks(["0:00", "0:02", "00:00:03.000", 5], IDS, video_seconds=6)
    assert [s.start_seconds for s in marks.scenes] == [0, 2, 3, 5]
    bad = tmp_path / "marks.yaml"
    bad.write_text("scenes: [\n")
    with pytest.raises(MarksError, match=r"line .*invalid YAML"):
        load_marks(bad, IDS)


def test_example_marks_match_the_demo_script() -> None:
    from narrate.script import load_script

    root = Path(__file__).parents[3] / "examples"
    ids = [s.id for s in load_script(root / "demo.yaml").segments]
    marks = load_marks(root / "demo.marks.yaml", ids)
    assert marks.video == "demo.mp4" and len(marks.scenes) == 8
