"""``narrate check`` on the demo render: the neural voice is heard, the robot less, and what is not the
script (noise, silence, another segment's words, speech played backwards) fails. The recogniser is
PocketSphinx, which this project did not write."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from narrate.check.render import MIN_WORDS_HEARD, check_render, load_report
from narrate.cli.main import main
from narrate.errors import ConfigError
from narrate.outputs import RenderFolder
from tests.conftest import EXAMPLES
from tests.narrate.cli.terminal import run_in_terminal


def spoiled_copy(render: Path, into: Path) -> Path:
    """The render with segment 0 replaced by noise, 1 by silence, 5 played backwards, and the scripts of
    2 and 3 swapped (each then says another segment's words)."""
    shutil.copytree(render, into)
    folder = RenderFolder(into)
    timeline = folder.timeline()
    track, rate = sf.read(folder.file("wav"), dtype="float32")
    spans = [(s.start_sample, s.end_sample) for s in timeline.segments]
    noise = np.random.default_rng(5).standard_normal(spans[0][1] - spans[0][0]).astype(np.float32) * 0.1
    track[spans[0][0] : spans[0][1]] = noise
    track[spans[1][0] : spans[1][1]] = 0
    track[spans[5][0] : spans[5][1]] = track[spans[5][0] : spans[5][1]][::-1].copy()
    sf.write(folder.file("wav"), track, rate, subtype="PCM_16")
    data = json.loads(folder.timeline_path.read_text())
    data["segments"][2]["text"], data["segments"][3]["text"] = (
        data["segments"][3]["text"],
        data["segments"][2]["text"],
    )
    folder.timeline_path.write_text(json.dumps(data))
    return into


@pytest.mark.usefixtures("prefect_server", "embedded_aws")
def test_the_neural_voice_is_heard_better_than_espeak_and_what_is_not_the_script_fails(
    tmp_path: Path,
) -> None:
    script = Path(shutil.copy(EXAMPLES / "demo.yaml", tmp_path / "demo.yaml"))
    out = tmp_path / "out"
    assert main(["render", str(script), "--voice", "joe", "--voice", "dev", "--out", str(out)]) == 0
    neural, robot = check_render(RenderFolder(out / "joe")), check_render(RenderFolder(out / "dev"))
    assert neural.passed and neural.language == "english"
    assert neural.mean_word_error_rate <= robot.mean_word_error_rate - 0.25  # clearly lower
    for ours, espeak in zip(neural.segments, robot.segments, strict=True):
        assert ours.word_error_rate <= espeak.word_error_rate, (ours, espeak)  # no segment worse
    assert load_report(RenderFolder(out / "joe").check_path) == neural  # written into the render
    with pytest.raises(ConfigError, match=r"cannot check german speech: .* knows english only"):
        check_render(RenderFolder(out / "joe"), language="german")

    spoiled = spoiled_copy(out / "joe", tmp_path / "spoiled")
    code, output = run_in_terminal(["check", str(spoiled)], tmp_path)
    shown = output.decode(errors="replace")
    assert code == 7, shown
    report = load_report(RenderFolder(spoiled).check_path)
    failed = {s.id for s in report.failed}
    assert failed == {"intro", "connect-source", "pick-tables", "first-chart", "share"}, report
    assert all(s.words_heard < MIN_WORDS_HEARD for s in report.failed)
    assert "not heard" in shown and "intro, connect-source, pick-tables, first-chart, share" in shown
    assert "Traceback" not in shown


def test_a_folder_without_a_render_or_in_another_language_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no timeline\.json; is this a finished render's folder"):
        check_render(RenderFolder(tmp_path))
    assert main(["check", str(tmp_path)]) == 2
    assert main(["check", str(tmp_path), "--language", "klingon"]) == 2
