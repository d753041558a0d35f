"""retry-failed-segments: only what failed is synthesised again, and the track comes out as a clean one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flows.render_narration import render_narration
from flows.retry_failed_segments import retry_failed_segments
from narrate.aws.local import LocalAws
from narrate.errors import ConfigError, RenderFailed
from narrate.manifest import RenderManifest
from narrate.settings import get_settings
from tasks.report import summary_markdown
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.usefixtures("prefect_server", "embedded_aws")
FAILING = {"connect-source", "share"}


def timeline_positions(out: Path) -> list[tuple[str, int, int, int]]:
    data = json.loads((out / "timeline.json").read_text())
    return [(s["id"], s["start_sample"], s["end_sample"], s["scene_end_sample"]) for s in data["segments"]]


def test_two_injected_failures_then_a_retry_of_exactly_those(tmp_path: Path, embedded_aws: LocalAws) -> None:
    emulator = embedded_aws.emulator
    assert emulator is not None
    script = Path(shutil.copy(EXAMPLES / "demo.yaml", tmp_path / "demo.yaml"))
    out = tmp_path / "out"
    before = emulator.synthesised.copy()
    emulator.fail_segments_once(FAILING)

    state = render_narration(script=str(script), out_dir=str(out), return_state=True)
    assert state.is_failed()
    with pytest.raises(RenderFailed):
        state.result()
    manifest = RenderManifest.load(out / "manifest.json")
    assert set(manifest.failed()) == FAILING and manifest.state == "failed"
    assert "narrate retry" in summary_markdown(manifest)
    first = emulator.synthesised - before
    assert set(first) == {s.id for s in manifest.segments} and set(first.values()) == {1}

    settings = get_settings()
    mirrored = f"s3://{settings.bucket}/{settings.s3_prefix}/manifests/out/manifest.json"
    result = retry_failed_segments(manifest=mirrored)  # the copy in S3, as another machine would
    assert result["retried"] == sorted(FAILING) and result["synthesised"] == 2
    assert (emulator.synthesised - before - first) == dict.fromkeys(FAILING, 1)  # only those two, once
    assert RenderManifest.load(out / "manifest.json").state == "completed"

    clean = tmp_path / "clean"
    render_narration(script=str(script), out_dir=str(clean))
    assert timeline_positions(out) == timeline_positions(clean)
    assert (out / "narration.wav").read_bytes() == (clean / "narration.wav").read_bytes()


def test_retry_of_a_subset_leaves_the_others_failed(tmp_path: Path, embedded_aws: LocalAws) -> None:
    assert embedded_aws.emulator is not None
    script = Path(shutil.copy(EXAMPLES / "demo.yaml", tmp_path / "demo.yaml"))
    out = tmp_path / "out"
    embedded_aws.emulator.fail_segments_once(FAILING)
    assert render_narration(script=str(script), out_dir=str(out), return_state=True).is_failed()
    state = retry_failed_segments(
        manifest=str(out / "manifest.json"), segment_ids=["share"], return_state=True
    )
    assert state.is_failed()
    manifest = RenderManifest.load(out / "manifest.json")
    assert list(manifest.failed()) == ["connect-source"]
    assert manifest.failed()["connect-source"].startswith("not retried this time: injected fault")
    with pytest.raises(ConfigError, match="segment_ids: \\['nope'\\]"):
        retry_failed_segments(manifest=str(out / "manifest.json"), segment_ids=["nope"])


def test_an_unchanged_weekly_render_wakes_nothing(tmp_path: Path, embedded_aws: LocalAws) -> None:
    assert embedded_aws.emulator is not None
    script = Path(shutil.copy(EXAMPLES / "demo.yaml", tmp_path / "demo.yaml"))
    render_narration(script=str(script), out_dir=str(tmp_path / "week1"))
    before = embedded_aws.emulator.synthesised.copy()
    result = render_narration(script=str(script), out_dir=str(tmp_path / "week2"))
    assert result["synthesised"] == 0 and embedded_aws.emulator.synthesised == before
    manifest = RenderManifest.load(tmp_path / "week2" / "manifest.json")
    assert "ensure" not in manifest.stage_seconds and manifest.gpu_seconds == 0
    assert "the endpoint was not woken" in summary_markdown(manifest)


def test_a_changed_script_is_not_retried(tmp_path: Path, embedded_aws: LocalAws) -> None:
    assert embedded_aws.emulator is not None
    script = Path(shutil.copy(EXAMPLES / "demo.yaml", tmp_path / "demo.yaml"))
    out = tmp_path / "out"
    embedded_aws.emulator.fail_segments_once({"intro"})
    assert render_narration(script=str(script), out_dir=str(out), return_state=True).is_failed()
    script.write_text(script.read_text().replace("Welcome", "Hello"))
    with pytest.raises(ConfigError, match="changed \\(or is gone\\) since that render"):
        retry_failed_segments(manifest=str(out / "manifest.json"))
