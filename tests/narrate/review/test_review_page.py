"""The review page as a person opens it: ``review.html`` from the render folder, in a real headless
Chromium, offline. Every segment has its row (with what the lexicon made it say), the track's audio
element is as long as the timeline, a segment's player plays its own span and stops, the captions
load, the re-timed video plays with its subtitles, and the timeline picture is drawn."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from flows.render_narration import render_narration
from narrate.outputs import REVIEW, TIMELINE_PNG, RenderFolder
from narrate.video import load_marks
from narrate.video.demo import make_demo_video
from tests.browser import chromium_page
from tests.conftest import write_script

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "build" / "test-artifacts"  # kept after the run (build/ is not tracked)
SCRIPT = """
title: Review
voice: {engine: dev}
pronunciations: {SQL: sequel}
segments:
  - {id: open, text: "Open the dashboard.", min_seconds: 2}
  - {id: query, text: "Write the SQL query.", min_seconds: 1}
  - {id: close, text: "Done.", min_seconds: 1}
video: {marks: three.marks.yaml}
"""
MARKS = """
video: rec.mp4
end_seconds: 6
scenes:
  - {id: open, start_seconds: 0, action_end_seconds: 2}
  - {id: query, start_seconds: 3}
  - {id: close, start_seconds: 4, action_end_seconds: 5}
"""
IDS = ["open", "query", "close"]


@pytest.fixture
def rendered(tmp_path: Path) -> RenderFolder:
    script = write_script(tmp_path, SCRIPT, "three.yaml")
    (tmp_path / "three.marks.yaml").write_text(MARKS)
    make_demo_video(
        load_marks(tmp_path / "three.marks.yaml", IDS), tmp_path / "rec.mp4", Fraction(25), (160, 96)
    )
    render_narration(script=str(script), out_dir=str(tmp_path / "out"), backend="inprocess")
    return RenderFolder(tmp_path / "out")


def play_until_paused(page: Any, selector: str, seconds: float) -> dict[str, float]:
    """Play the element, wait until it stops by itself, and say where it started and stopped."""
    return page.evaluate(
        """async ([selector, limit]) => {
            const el = document.querySelector(selector);
            let first = null;
            el.addEventListener("timeupdate", () => { if (first === null) first = el.currentTime; });
            await el.play();
            const started = Date.now();
            const wait = () => new Promise(r => setTimeout(r, 50));
            while (!el.paused && Date.now() - started < limit * 1000) await wait();
            return {first: first ?? -1, stopped: el.currentTime, paused: el.paused ? 1 : 0};
        }""",
        [selector, seconds],
    )


@pytest.mark.usefixtures("prefect_server", "narrate_dirs")
def test_the_review_page_shows_and_plays_the_render(rendered: RenderFolder) -> None:
    timeline = rendered.timeline()
    page_path = rendered.path / REVIEW
    assert page_path.is_file() and (rendered.path / TIMELINE_PNG).is_file()
    assert "http://" not in page_path.read_text() and "https://" not in page_path.read_text()  # offline
    frame = 1 / float(timeline.frame_rate())
    with chromium_page() as page:
        failed: list[str] = []
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.goto(page_path.as_uri())
        page.wait_for_function("document.getElementById('player').readyState >= 1")
        rows = page.eval_on_selector_all("tbody tr", "rows => rows.map(r => r.id)")
        assert rows == [f"segment-{sid}" for sid in IDS]
        assert "said as: Write the sequel query." in page.inner_text("#segment-query")
        duration = page.evaluate("document.getElementById('player').duration")
        assert abs(duration - timeline.total_seconds) <= frame, (duration, timeline.total_seconds)
        cues = page.evaluate("document.getElementById('player').textTracks[0].cues?.length ?? 0")
        assert cues >= len(IDS)  # the captions loaded (a data: track)
        picture = page.evaluate("document.getElementById('picture').naturalWidth")
        assert picture > 0
        segment = timeline.segments[1]
        span = play_until_paused(page, "#segment-query audio", 10)
        assert span["paused"] == 1
        assert abs(span["first"] - segment.start_seconds) < 0.3, span  # from its own start ...
        assert abs(span["stopped"] - segment.end_seconds) < 0.3, span  # ... to its own end
        page.wait_for_function("document.getElementById('video').readyState >= 1")
        video = play_until_paused(page, "#video", 1.0)
        assert video["first"] >= 0 and video["stopped"] > 0.5  # it plays
        assert page.evaluate("document.getElementById('video').textTracks.length") == 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "review-page.png"), full_page=True)
    assert not failed, failed
