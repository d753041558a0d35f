"""The quality gate in a render of the Piper voice, with takes spoiled the way neural TTS spoils them
(through a test double of the engine's own ``speak``): each is caught and re-rolled with the next seed;
a segment that never passes fails the render with its scores, or keeps its best take; a picked take
survives a re-render and a retry; every decision is in the manifest, the timeline and the report."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flows.render_narration import render_narration
from flows.retry_failed_segments import retry_failed_segments
from model_server.engines.piper import PiperEngine
from narrate.cli.main import main
from narrate.errors import RenderFailed
from narrate.manifest import RenderManifest
from narrate.script import load_script
from narrate.settings import get_settings
from narrate.synthesis.requests import model_identity
from narrate.takes import take_seed
from tasks.report import segment_rows, summary_markdown
from tasks.script import plan_take
from tests.conftest import write_script

pytestmark = pytest.mark.usefixtures("prefect_server")

TEXTS = {
    "intro": "Welcome to Acme Insights. We will turn raw sales data into a dashboard your team can use.",
    "connect": "First, connect a data source. Pick your warehouse from the list and paste a read-only key.",
    "tables": "Next, choose the tables you care about. Insights suggests joins from the keys it finds.",
    "chart": "Drag a measure onto the canvas, and a chart appears at once, already grouped by month.",
}
RATE = 22050
Spoil = Callable[[np.ndarray], np.ndarray]


def runaway(audio: np.ndarray) -> np.ndarray:
    return np.concatenate([audio] * 4)


def truncated(audio: np.ndarray) -> np.ndarray:
    return audio[: len(audio) // 4]


def long_silence(audio: np.ndarray) -> np.ndarray:
    middle = len(audio) // 2
    return np.concatenate([audio[:middle], np.zeros(3 * RATE, np.float32), audio[middle:]])


def clipped(audio: np.ndarray) -> np.ndarray:
    return np.clip(audio * 20, -1.0, 1.0)


def spoil_takes(monkeypatch: pytest.MonkeyPatch, spoils: dict[str, Spoil], every_take: bool = False) -> None:
    """The engine's takes of these segments spoiled: the first take only, or every take."""
    original = PiperEngine.speak
    by_text = {TEXTS[segment_id]: spoil for segment_id, spoil in spoils.items()}

    def speak(self: PiperEngine, text: str, voice: Any, seed: int = 0) -> np.ndarray:
        audio = original(self, text, voice, seed)
        spoil = by_text.get(text)
        return spoil(audio) if spoil is not None and (every_take or seed == 0) else audio

    monkeypatch.setattr(PiperEngine, "speak", speak)


def script(folder: Path, extra: str = "") -> Path:
    segments = "".join(f"  - id: {sid}\n    text: {text}\n" for sid, text in TEXTS.items())
    return write_script(folder, f"title: Gate\nvoice: {{engine: piper}}\n{extra}segments:\n{segments}")


def render(path: Path, out: Path) -> dict[str, Any]:
    return render_narration(script=str(path), out_dir=str(out), backend="inprocess")


def planned_key(path: Path, segment_id: str, take: int) -> str:
    narration = load_script(path)
    settings = get_settings()
    identity = model_identity(narration.voice, settings.server_config(), settings.aws)
    segment = next(s for s in narration.segments if s.id == segment_id)
    return plan_take(narration, identity, segment, take).cache_key


def test_each_spoiled_take_is_caught_and_re_rolled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spoils = {"intro": runaway, "connect": truncated, "tables": long_silence, "chart": clipped}
    spoil_takes(monkeypatch, spoils)
    path, out = script(tmp_path), tmp_path / "out"
    render(path, out)
    manifest = RenderManifest.load(out / "manifest.json")
    caught = {"intro": "duration", "connect": "duration", "tables": "silence", "chart": "clipping"}
    for record in manifest.segments:
        first, second = record.takes
        assert not first.passed and caught[record.id] in first.summary, (record.id, first.summary)
        assert second.passed and second.take == 2 and second.seed == take_seed(0, 2)
        assert record.cache_key == second.cache_key == planned_key(path, record.id, 2)
    timeline = json.loads((out / "timeline.json").read_text())
    for segment in timeline["segments"]:
        assert segment["qc"]["passed"] and segment["qc"]["take"] == 2 and segment["qc"]["takes"] == 2
        assert set(segment["qc"]["checks"]) >= {"duration", "silence", "clipping", "level", "words"}
    rows = {row["id"]: row for row in segment_rows(manifest)}
    assert rows["tables"]["gate"].startswith("take 2 passed; re-rolled take 1: silence")
    assert "4 segment(s) with a failed take" in summary_markdown(manifest)
    # the next render judges the cached takes from their notes: nothing synthesised, take 2 kept
    again = render(path, tmp_path / "again")
    assert again["synthesised"] == 0
    assert json.loads((tmp_path / "again" / "timeline.json").read_text())["segments"][0]["qc"]["take"] == 2


def test_a_segment_that_never_passes_fails_the_render_with_its_scores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spoil_takes(monkeypatch, {"chart": clipped}, every_take=True)
    path = script(tmp_path, "takes: 2\n")
    with pytest.raises(RenderFailed) as failure:
        render(path, tmp_path / "out")
    error = failure.value.failed["chart"]
    assert "no take passed the quality gate" in error and "take 1 (seed 0): clipping" in error
    assert f"take 2 (seed {take_seed(0, 2)}): clipping" in error and "take 3" not in error
    manifest = RenderManifest.load(tmp_path / "out" / "manifest.json")
    assert [s.status for s in manifest.segments].count("done") == 3  # the others are finished work


def test_keep_best_keeps_the_best_failed_take(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spoil_takes(monkeypatch, {"chart": clipped}, every_take=True)
    path, out = script(tmp_path, "on_failed_check: keep-best\n"), tmp_path / "out"
    render(path, out)
    record = RenderManifest.load(out / "manifest.json").segment("chart")
    assert len(record.takes) == 3 and not any(t.passed for t in record.takes)
    best = min(record.takes, key=lambda t: (*t.badness, t.take))
    assert record.status == "done" and record.cache_key == best.cache_key
    segments = json.loads((out / "timeline.json").read_text())["segments"]
    qc = next(s for s in segments if s["id"] == "chart")["qc"]
    assert qc["passed"] is False and qc["take"] == best.take


def test_a_picked_take_survives_a_re_render_and_a_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = script(tmp_path)
    assert main(["pick", str(path), "--segment", "intro", "--take", "3"]) == 0
    assert (tmp_path / "script.takes.yaml").is_file()
    out = tmp_path / "out"
    original = PiperEngine.synthesize

    def failing_chart(self: PiperEngine, voice: Any, segments: list[Any], generation: Any) -> list[Any]:
        from model_server.protocol import SegmentAudio

        results = original(self, voice, segments, generation)
        return [SegmentAudio(id=r.id, error="engine error: out of memory", retryable=False)
                if r.id == "chart" else r for r in results]  # fmt: skip

    monkeypatch.setattr(PiperEngine, "synthesize", failing_chart)
    with pytest.raises(RenderFailed):
        render(path, out)
    intro = RenderManifest.load(out / "manifest.json").segment("intro")
    picked_key = planned_key(path, "intro", 3)
    assert intro.cache_key == picked_key and intro.kept is not None and intro.kept.picked
    monkeypatch.setattr(PiperEngine, "synthesize", original)
    result = retry_failed_segments(manifest=str(out / "manifest.json"))
    assert result["retried"] == ["chart"]
    retried = RenderManifest.load(out / "manifest.json")
    assert retried.segment("intro").cache_key == picked_key and retried.state == "completed"
    again = render(path, tmp_path / "again")
    assert again["synthesised"] == 0
    assert RenderManifest.load(tmp_path / "again" / "manifest.json").segment("intro").cache_key == picked_key


def test_the_lexicon_changes_what_is_said_never_the_captions(tmp_path: Path) -> None:
    path = write_script(tmp_path, "title: t\nvoice: {engine: dev}\npronunciations: {SQL: sequel}\n"
                                  "segments: [{id: a, text: 'Query it with SQL.'}]\n")  # fmt: skip
    out = tmp_path / "out"
    render(path, out)
    segment = json.loads((out / "timeline.json").read_text())["segments"][0]
    assert segment["text"] == "Query it with SQL." and segment["spoken_text"] == "Query it with sequel."
    for captions in ("captions.vtt", "captions.srt"):
        text = (out / captions).read_text()
        assert "Query it with SQL." in text and "sequel" not in text
