"""The render flow end to end on the local endpoint, against a real local Prefect server."""

from __future__ import annotations

import json
import shutil
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from flows.render_narration import render_narration
from narrate.aws.local import LocalAws
from narrate.errors import RenderFailed, ScriptError
from narrate.manifest import RenderManifest
from narrate.settings import get_settings
from tests.conftest import EXAMPLES, CloneScript
from tests.narrate.track.meter import ebur128

pytestmark = pytest.mark.usefixtures("prefect_server", "embedded_aws")


def render(script: Path, out: Path, **kwargs: Any) -> dict[str, Any]:
    return render_narration(script=str(script), out_dir=str(out), **kwargs)


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return Path(shutil.copy(EXAMPLES / "demo.yaml", tmp_path / "demo.yaml"))


def test_demo_renders_sample_exact_outputs(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = render(demo, out)
    assert result["synthesised"] == 8 and result["cached"] == 0
    for name in ("narration.wav", "narration.mp3", "timeline.json", "captions.srt", "captions.vtt"):
        assert (out / name).stat().st_size > 0, name
    timeline = json.loads((out / "timeline.json").read_text())
    audio, rate = sf.read(out / "narration.wav", dtype="float32")
    assert rate == 24000 and len(audio) == timeline["total_samples"]
    position = 0
    for segment in timeline["segments"]:
        assert segment["start_sample"] == position
        assert segment["start_sample"] * 30 % 24000 == 0  # on a frame at 30 fps
        position += segment["clip_samples"] + segment["padding_samples"]
        clip = audio[segment["start_sample"] : segment["end_sample"]]
        assert np.sqrt(np.mean(clip**2)) > 0.01  # speech where the timeline says
    assert position == timeline["total_samples"]
    lengths = [s["clip_samples"] for s in timeline["segments"]]
    chars = [len(s["text"]) for s in timeline["segments"]]
    assert np.corrcoef(lengths, chars)[0, 1] > 0.8  # clips grow with their text
    assert not (out / "narration.wav.partial").exists() and not list(out.glob(".staging-*"))
    manifest = RenderManifest.load(out / "manifest.json")
    assert manifest.state == "completed" and all(s.status == "done" for s in manifest.segments)
    assert_on_target(out / "narration.wav", timeline)


def assert_on_target(wav: Path, timeline: dict[str, Any]) -> None:
    """The track's loudness and true peak by ffmpeg's BS.1770 meter, each clip's by pyloudnorm's."""
    measured = ebur128(wav)
    assert measured.integrated_lufs == pytest.approx(-16.0, abs=0.5)
    assert measured.true_peak_dbtp <= -1.0
    audio, rate = sf.read(wav, dtype="float64")
    meter = pyloudnorm.Meter(rate)
    clips = [
        meter.integrated_loudness(audio[s["start_sample"] : s["end_sample"]]) for s in timeline["segments"]
    ]
    assert max(clips) - min(clips) <= 1.0  # even: no segment louder or quieter than the rest


def test_rerun_synthesises_nothing_and_an_edit_only_itself(demo: Path, tmp_path: Path) -> None:
    render(demo, tmp_path / "first")
    again = render(demo, tmp_path / "again")
    assert (again["synthesised"], again["cached"]) == (0, 8)
    stages = RenderManifest.load(tmp_path / "again" / "manifest.json").stage_seconds
    assert set(stages) == {"assemble"}  # all cached: no ensure, no wake, no GPU
    timeline = json.loads((tmp_path / "again" / "timeline.json").read_text())
    assert all(s["cache_hit"] for s in timeline["segments"])
    first_wav = (tmp_path / "first" / "narration.wav").read_bytes()
    assert (tmp_path / "again" / "narration.wav").read_bytes() == first_wav

    demo.write_text(demo.read_text().replace("Select orders and customers.", "Select orders only."))
    edited = render(demo, tmp_path / "edited")
    assert (edited["synthesised"], edited["cached"]) == (1, 7)
    hits = {
        s["id"]: s["cache_hit"]
        for s in json.loads((tmp_path / "edited" / "timeline.json").read_text())["segments"]
    }
    assert [sid for sid, hit in hits.items() if not hit] == ["pick-tables"]


FAILING = """
title: One segment cannot be spoken
voice: {engine: dev}
output: {formats: [wav]}
segments:
  - {id: good-1, text: This one is fine.}
  - {id: silent, text: "..."}
  - {id: good-2, text: So is this one.}
"""


def test_flow_fails_on_a_failed_segment_and_keeps_the_rest(tmp_path: Path) -> None:
    script = tmp_path / "failing.yaml"
    script.write_text(FAILING)
    out = tmp_path / "out"
    state = render_narration(script=str(script), out_dir=str(out), return_state=True)
    assert state.is_failed()
    with pytest.raises(RenderFailed, match="silent: text: produced no audio"):
        state.result()
    manifest = RenderManifest.load(out / "manifest.json")
    statuses = {s.id: s.status.value for s in manifest.segments}
    assert statuses == {"good-1": "done", "silent": "failed", "good-2": "done"}
    assert manifest.segment("silent").attempts == 1  # a refusal is final: not retried
    assert manifest.state == "failed" and not (out / "narration.wav").exists()
    assert "scale down" in manifest.stage_seconds
    assert endpoint_instances() == (0, 0)  # released after the failure too

    script.write_text(FAILING.replace('"..."', "Now it speaks."))
    fixed = render(script, out)
    assert (fixed["synthesised"], fixed["cached"]) == (1, 2)


def endpoint_instances() -> tuple[int, int]:
    """(desired, current) instances of this test's endpoint, once the emulator has caught up."""
    client = boto3.client("sagemaker")
    name = get_settings().endpoint_name
    for _ in range(50):
        variant = client.describe_endpoint(EndpointName=name)["ProductionVariants"][0]
        counts = (variant.get("DesiredInstanceCount", 0), variant.get("CurrentInstanceCount", 0))
        if counts == (0, 0):
            break
        time.sleep(0.1)
    return counts


def test_two_renders_started_together_both_finish_one_after_the_other(
    tmp_path: Path, embedded_aws: LocalAws
) -> None:
    assert embedded_aws.emulator is not None
    embedded_aws.emulator.set_invocation_seconds(2.0)  # both renders are surely at work at once
    try:
        _two_concurrent_renders(tmp_path)
    finally:
        embedded_aws.emulator.set_invocation_seconds(0.0)


def _two_concurrent_renders(tmp_path: Path) -> None:
    short = tmp_path / "short.yaml"
    short.write_text(FAILING.replace('"..."', "Short one."))
    long = tmp_path / "long.yaml"
    long.write_text(Path(EXAMPLES / "demo.yaml").read_text())
    results: dict[str, Any] = {}

    def run(name: str, script: Path) -> None:
        results[name] = render_narration(script=str(script), out_dir=str(tmp_path / name), return_state=True)

    threads = [threading.Thread(target=run, args=(n, p)) for n, p in (("short", short), ("long", long))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert all(state.is_completed() for state in results.values()), results
    manifests = [RenderManifest.load(tmp_path / name / "manifest.json") for name in ("short", "long")]
    assert all((Path(m.out_dir) / "narration.wav").exists() and m.endpoint_released for m in manifests)
    first, second = sorted(manifests, key=lambda m: m.started_at)
    assert first.released_at is not None
    # the endpoint's render slot: the second waited (it was not lost) until the first had released
    assert first.released_at <= datetime.fromisoformat(second.started_at).timestamp() + 1
    assert endpoint_instances() == (0, 0)


def test_a_throttled_invoke_is_retried_and_succeeds(tmp_path: Path, embedded_aws: LocalAws) -> None:
    script = tmp_path / "ok.yaml"
    script.write_text(FAILING.replace('"..."', "Fine too."))
    assert embedded_aws.emulator is not None
    embedded_aws.emulator.throttle_next_invocations(1)
    result = render(script, tmp_path / "out")
    assert result["synthesised"] == 3
    manifest = RenderManifest.load(tmp_path / "out" / "manifest.json")
    assert all(s.attempts == 1 for s in manifest.segments)  # retried inside submit, not re-synthesised


def test_the_inprocess_backend_renders_without_aws(tmp_path: Path) -> None:
    script = tmp_path / "ok.yaml"
    script.write_text(FAILING.replace('"..."', "Fine too."))
    result = render(script, tmp_path / "out", backend="inprocess")
    assert result["synthesised"] == 3 and (tmp_path / "out" / "narration.wav").exists()


def test_invalid_script_fails_before_anything_is_written(tmp_path: Path) -> None:
    script = tmp_path / "bad.yaml"
    script.write_text(FAILING.replace("good-2", "good-1"))
    state = render_narration(script=str(script), out_dir=str(tmp_path / "out"), return_state=True)
    assert state.is_failed()
    with pytest.raises(ScriptError, match="duplicate id 'good-1'"):
        state.result()
    assert not (tmp_path / "out").exists()
    endpoints = boto3.client("sagemaker").list_endpoints()["Endpoints"]
    assert get_settings().endpoint_name not in {e["EndpointName"] for e in endpoints}  # no AWS touched


def test_a_cloned_voice_render_discloses_whose_voice_under_which_consent(
    tmp_path: Path, tiny_clone_script: CloneScript
) -> None:
    script = tiny_clone_script.script
    out = tmp_path / "out"
    render(script, out, backend="inprocess")
    timeline = json.loads((out / "timeline.json").read_text())
    for disclosure in (
        timeline["disclosure"],
        sf.info(str(out / "narration.wav")).extra_info + str(sf.SoundFile(out / "narration.wav").comment),
        (out / "captions.vtt").read_text().split("\n\n")[1],
    ):
        assert "Synthetic speech" in disclosure and "Ada Lovelace" in disclosure, disclosure
        assert tiny_clone_script.consent_id in disclosure
    for segment in timeline["segments"]:  # the Base checkpoint's own speaker encoder judged each take
        similarity = segment["qc"]["checks"]["similarity"]
        assert similarity["passed"] and -1 <= similarity["value"] <= 1, similarity


POLLY = """
title: A Polly voice
voice: {engine: polly, voice_id: Matthew, polly_engine: neural}
output: {formats: [wav]}
segments:
  - {id: hello, text: Hello from Polly. This scene is a little longer than the next one.}
  - {id: bye, text: And goodbye.}
"""


def test_a_polly_voice_renders_in_local_mode_marked_emulated(tmp_path: Path, embedded_aws: LocalAws) -> None:
    from narrate.synthesis.polly_speech import EMULATION_NOTE

    script = tmp_path / "polly.yaml"
    script.write_text(POLLY)
    calls = embedded_aws.polly.calls
    out = tmp_path / "out"
    result = render(script, out)
    assert (result["synthesised"], result["cached"]) == (2, 0)
    assert embedded_aws.polly.calls - calls == 2  # through SynthesizeSpeech on the embedded AWS
    manifest = RenderManifest.load(out / "manifest.json")
    assert (manifest.state, manifest.endpoint, manifest.emulated) == ("completed", "polly", EMULATION_NOTE)
    assert manifest.gpu_seconds == 0 and manifest.endpoint_released
    for segment in manifest.segments:
        assert segment.clip_path and sf.info(segment.clip_path).samplerate == 16000  # Polly's PCM, as sent
    timeline = json.loads((out / "timeline.json").read_text())
    assert timeline["emulated"] == EMULATION_NOTE and timeline["model_id"] == "aws-polly-emulated"
    for disclosure in (
        timeline["disclosure"],
        str(sf.SoundFile(out / "narration.wav").comment),
        (out / "captions.vtt").read_text().split("\n\n")[1],
    ):
        assert f"Emulated: {EMULATION_NOTE}" in disclosure, disclosure
    endpoints = boto3.client("sagemaker").list_endpoints()["Endpoints"]
    assert get_settings().endpoint_name not in {e["EndpointName"] for e in endpoints}  # no SageMaker at all

    again = render(script, tmp_path / "again")
    assert (again["synthesised"], again["cached"]) == (0, 2)
    assert embedded_aws.polly.calls - calls == 2
    assert set(RenderManifest.load(tmp_path / "again" / "manifest.json").stage_seconds) == {"assemble"}


def test_a_throttled_polly_segment_is_retried_and_succeeds(tmp_path: Path, embedded_aws: LocalAws) -> None:
    script = tmp_path / "polly.yaml"
    script.write_text(POLLY)
    embedded_aws.polly.throttle_next(3)  # all botocore's own attempts: the flow's next round retries
    result = render(script, tmp_path / "out", backend="inprocess")  # a Polly voice goes to Polly anyway
    assert result["synthesised"] == 2
    manifest = RenderManifest.load(tmp_path / "out" / "manifest.json")
    assert manifest.state == "completed"
    # the longer segment went first (plan_jobs: longest first) and took the throttles
    assert {s.id: s.attempts for s in manifest.segments} == {"hello": 2, "bye": 1}
