"""The manifest's state changes: each one what a render records, saved as it happens."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from narrate.endpoints import EndpointKind, Usage
from narrate.errors import RenderFailed
from narrate.manifest import RenderManifest, RenderState, SegmentRecord, SegmentStatus
from narrate.outputs import RenderFolder


@dataclass(frozen=True)
class Attempt:
    error: str | None = None
    clip_path: str | None = None
    clip_samples: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def manifest(tmp_path: Path) -> RenderManifest:
    segments = [SegmentRecord(id=i, cache_key=f"k{i}") for i in "abc"]
    return RenderManifest(
        script="s.yaml", script_sha256="0" * 64, title="t", engine="dev", endpoint=EndpointKind.INPROCESS,
        out_dir=str(tmp_path), segments=segments,
    )  # fmt: skip


def on_disk(tmp_path: Path) -> RenderManifest:
    return RenderFolder(tmp_path).manifest()


def test_cached_segments_are_done_and_a_retry_leaves_the_others_failed(tmp_path: Path) -> None:
    record = manifest(tmp_path)
    record.mark_cached({"ka"}, only={"b"}, earlier_errors={"c": "engine error"})
    saved = on_disk(tmp_path)
    assert saved.segment("a").status is SegmentStatus.DONE and saved.segment("a").cache_hit
    assert saved.segment("b").status is SegmentStatus.PENDING
    assert saved.segment("c").error == "not retried this time: engine error"
    assert saved.failed() == {"c": "not retried this time: engine error"}


def test_an_outcome_fails_a_segment_only_when_it_is_final(tmp_path: Path) -> None:
    record = manifest(tmp_path)
    record.record_outcome("a", Attempt(error="throttled"), final=False)
    assert (record.segment("a").status, record.segment("a").attempts) == (SegmentStatus.PENDING, 1)
    record.record_outcome("a", Attempt(error="throttled"), final=True)
    assert (record.segment("a").status, record.segment("a").attempts) == (SegmentStatus.FAILED, 2)
    record.record_outcome("b", Attempt(clip_path="/c/kb.wav", clip_samples=480), final=True)
    assert record.segment("b").status is SegmentStatus.DONE and record.segment("b").clip_samples == 480


def test_failed_segments_fail_the_render_naming_each(tmp_path: Path) -> None:
    record = manifest(tmp_path)
    record.raise_if_failed()  # nothing failed: nothing happens
    record.record_outcome("b", Attempt(error="text: produced no audio"), final=True)
    with pytest.raises(RenderFailed, match="b: text: produced no audio") as raised:
        record.raise_if_failed()
    assert raised.value.manifest_path == str(tmp_path / "manifest.json")
    saved = on_disk(tmp_path)
    assert (saved.state, saved.error) == (RenderState.FAILED, "1 segment(s) failed")


def test_an_unexpected_end_is_recorded_once_and_kept_short(tmp_path: Path) -> None:
    record = manifest(tmp_path)
    record.fail_if_running(RuntimeError("x" * 2000))
    assert on_disk(tmp_path).error == ("RuntimeError: " + "x" * 2000)[:500]
    record.fail_if_running(ValueError("later"))  # it already ended: the first cause stays
    assert on_disk(tmp_path).error.startswith("RuntimeError")


def test_stages_usage_and_outputs(tmp_path: Path) -> None:
    record = manifest(tmp_path)
    with pytest.raises(KeyError), record.timed("synthesise"):
        raise KeyError("boom")  # timed however it ends
    assert "synthesise" in record.stage_seconds
    record.record_usage(Usage(gpu_seconds=12.5, cost_usd=0.0049, released=True))
    record.complete({"wav": "narration.wav"})
    record.resume()
    record.complete({"video": "video.mp4"})
    saved = on_disk(tmp_path)
    assert (saved.gpu_seconds, saved.endpoint_released, saved.released_at is not None) == (12.5, True, True)
    assert (
        saved.outputs == {"wav": "narration.wav", "video": "video.mp4"}
        and saved.state is RenderState.COMPLETED
    )


def test_a_manifest_written_before_the_endpoint_field_still_loads(tmp_path: Path) -> None:
    record = manifest(tmp_path)
    data = json.loads(record.model_dump_json())
    data["backend"] = data.pop("endpoint")
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    assert on_disk(tmp_path).endpoint is EndpointKind.INPROCESS
