"""What the display says while a render runs: the stage running and the ones done with their times,
the instance time held so far and its cost; and, where the terminal is not interactive, plain lines,
each said once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from narrate.aws.pricing import HourlyPrice
from narrate.cli.progress import ManifestProgress, segment_label, stage_text
from narrate.endpoints import Usage
from narrate.manifest import SegmentStatus
from tests.narrate.test_manifest import Attempt, manifest

PRICE = HourlyPrice(3.6, "test")  # a cent every 10 s


def test_the_stage_row_says_what_runs_what_is_done_and_what_the_instance_costs_so_far(tmp_path: Path) -> None:
    record = manifest(tmp_path)
    with record.timed("ensure"):
        pass
    record.stage_seconds["ensure"] = 0.5  # what it took does not matter here, only that it is shown
    record.held_since = 100.0
    with record.timed("synthesise"):
        record.stage_started_at = 110.0
        text = stage_text(record, PRICE, now=113.0)
        assert segment_label(record.segment("a"), record.stage) == "synthesising"
    assert "[bold]synthesise[/] 3.0 s" in text and "done: ensure 0.50 s" in text
    assert "GPU ≈ 13 s held so far, ≈ $0.0130" in text
    assert segment_label(record.segment("a"), record.stage) == "waiting"
    record.record_usage(Usage(gpu_seconds=20.0, cost_usd=0.02, released=True, price="$3.6/h"))
    assert "GPU 20.0 s held, $0.0200 ($3.6/h)" in stage_text(record, PRICE)


def test_a_terminal_that_is_not_interactive_gets_each_line_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = manifest(tmp_path)
    record.save()
    time.sleep(0.01)  # the display reads manifests written after it started
    progress = ManifestProgress(record.path, ["a", "b", "c"])
    assert not progress.live  # pytest's stderr is not a terminal
    with progress:
        with record.timed("synthesise"):
            record.record_outcome("a", Attempt(clip_path="x", clip_samples=10), final=True)
            record.save()
            progress._update()
            progress._update()  # nothing new: nothing said
        record.record_outcome("b", Attempt(error="boom"), final=True)
        record.mark_cached({"kc"}, None, {})
        record.save()
    lines = capsys.readouterr().err.splitlines()
    assert lines.count("a: synthesised") == 1 and lines.count("c: cached") == 1
    assert [line for line in lines if line.startswith("b: ")] == ["b: failed: boom"]
    assert sum(1 for line in lines if line.startswith("stage synthesise: ")) == 1
    assert record.segment("b").status is SegmentStatus.FAILED
