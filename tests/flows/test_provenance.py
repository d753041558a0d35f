"""A signed render, end to end: the narration (WAV, MP3) and the re-timed recording carry Content
Credentials that c2pa's Reader trusts, provenance.json and the Prefect report say so, and `narrate
verify` passes the render folder; with signing not configured nothing changes."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from flows.render_narration import render_narration
from narrate.cli.main import main as narrate_main
from narrate.endpoints import EndpointKind
from narrate.outputs import RenderFolder
from narrate.provenance.claims import SOURCE_TYPES
from narrate.video import load_marks
from narrate.video.demo import make_demo_video
from tests.conftest import write_script

pytestmark = pytest.mark.usefixtures("prefect_server")

SCRIPT = """
title: Signed
voice: {engine: dev, language: en, rate_wpm: 240}
output: {fps: 25, formats: [wav, mp3]}
video: {marks: signed.marks.yaml}
segments:
  - {id: open, text: "Open it.", pause_after_seconds: 0.1}
  - {id: close, text: "Done.", min_seconds: 0.5}
"""
MARKS = """
video: rec.mp4
end_seconds: 2
scenes:
  - {id: open, start_seconds: 0, action_end_seconds: 0.5}
  - {id: close, start_seconds: 1}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    script = write_script(tmp_path, SCRIPT, "signed.yaml")
    marks = write_script(tmp_path, MARKS, "signed.marks.yaml")
    make_demo_video(load_marks(marks, ["open", "close"]), tmp_path / "rec.mp4", Fraction(25), (96, 64))
    return script


def test_a_signed_render_verifies_narration_and_video(project: Path, tmp_path: Path, signing: Any) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    out = tmp_path / "out"
    result = render_narration(script=str(project), out_dir=str(out), backend=EndpointKind.INPROCESS)
    record = RenderFolder(out).provenance()
    assert record is not None and result["outputs"]["provenance"] == str(out / "provenance.json")
    assert sorted(record.files) == ["narration.mp3", "narration.wav", "video.mp4"]
    assert all(v.status == "trusted" and v.development for v in record.files.values())
    narration, video = record.files["narration.wav"].claims, record.files["video.mp4"].claims
    assert narration is not None and video is not None
    assert (narration.media, video.media) == ("narration", "video")
    assert record.files["video.mp4"].digital_source_type == SOURCE_TYPES["video"]
    manifest = RenderFolder(out).manifest()
    assert narration.script_sha256 == manifest.script_sha256 and narration.model_id == "espeak-ng"
    assert json.loads((out / "video.report.json").read_text())["max_drift_frames"] <= 1  # the signed MP4's
    assert narrate_main(["verify", str(out)]) == 0

    with get_client(sync_client=True) as client:
        summaries = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["render-out-summary"]))
        )
    assert any("Content Credentials (C2PA)" in str(a.data) and "video.mp4: trusted" in str(a.data)
               for a in summaries)  # fmt: skip


def test_without_a_certificate_nothing_is_signed(tmp_path: Path) -> None:
    script = write_script(tmp_path, SCRIPT.replace("video: {marks: signed.marks.yaml}\n", ""), "plain.yaml")
    out = tmp_path / "out"
    result = render_narration(script=str(script), out_dir=str(out), backend=EndpointKind.INPROCESS)
    assert "provenance" not in result["outputs"] and RenderFolder(out).provenance() is None
    assert narrate_main(["verify", str(out / "narration.wav")]) == 8  # no manifest: reported missing


def test_a_new_certificate_signs_an_unchanged_track_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signing: Any
) -> None:
    from narrate.provenance.devcert import create_development_certificate
    from narrate.settings import get_settings

    script = write_script(tmp_path, SCRIPT.replace("video: {marks: signed.marks.yaml}\n", ""), "plain.yaml")
    out = tmp_path / "out"
    render_narration(script=str(script), out_dir=str(out), backend=EndpointKind.INPROCESS)
    first = (out / "narration.wav").read_bytes()
    renewed = create_development_certificate(tmp_path / "renewed")
    monkeypatch.setenv("NARRATE_PROVENANCE_DIR", str(renewed.folder))
    get_settings.cache_clear()

    render_narration(script=str(script), out_dir=str(out), backend=EndpointKind.INPROCESS)
    record = RenderFolder(out).provenance()
    assert record is not None and sorted(record.files) == ["narration.mp3", "narration.wav"]
    assert all(v.status == "trusted" for v in record.files.values())  # under the renewed root alone
    assert (out / "narration.wav").read_bytes() != first
    assert narrate_main(["verify", str(out)]) == 0
