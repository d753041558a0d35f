"""The fault suite: each fault injected on the embedded AWS at the boundary narrate cannot control.

Every test checks the three promises: nothing finished is lost (it is cached and a later run reuses
it), the final state is honest (the manifest says what happened), and the endpoint ends at zero.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from flows.render_narration import render_narration
from narrate.aws.local import LocalAws
from narrate.errors import ModelNotLoaded
from narrate.manifest import RenderManifest
from narrate.settings import get_settings
from tests.conftest import copy_demo, wait_for
from tests.flows.test_render_narration import endpoint_instances

pytestmark = pytest.mark.usefixtures("prefect_server", "embedded_aws")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NARRATE_BATCH_SIZE", "4")  # two requests of four segments
    get_settings.cache_clear()
    return copy_demo(tmp_path, voice="dev")  # faults of the lifecycle: the fast voice keeps deadlines short


@pytest.fixture
def emulator(embedded_aws: LocalAws) -> Iterator[Any]:
    assert embedded_aws.emulator is not None
    yield embedded_aws.emulator
    embedded_aws.emulator.damage_next_outputs(0, "drop")
    embedded_aws.emulator.set_cold_start_seconds(0.3)


def manifest_of(out: Path) -> RenderManifest:
    return RenderManifest.load(out / "manifest.json")


def test_an_output_missing_after_the_deadline_is_submitted_again(
    demo: Path, tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NARRATE_OUTPUT_DEADLINE_SECONDS", "3")
    get_settings.cache_clear()
    emulator.damage_next_outputs(1, "drop")
    result = render_narration(script=str(demo), out_dir=str(tmp_path / "out"))
    assert result["synthesised"] == 8
    attempts = sorted(s.attempts for s in manifest_of(tmp_path / "out").segments)
    assert attempts == [1, 1, 1, 1, 2, 2, 2, 2]  # the four of the lost output, once more
    assert endpoint_instances() == (0, 0)


@pytest.mark.parametrize("how", ["truncate", "not-audio"])
def test_a_damaged_output_is_rejected_and_retried(
    demo: Path, tmp_path: Path, emulator: Any, how: str
) -> None:
    emulator.damage_next_outputs(1, how)
    render_narration(script=str(demo), out_dir=str(tmp_path / "out"))
    manifest = manifest_of(tmp_path / "out")
    assert manifest.state == "completed" and max(s.attempts for s in manifest.segments) == 2
    assert endpoint_instances() == (0, 0)


def test_outputs_damaged_every_time_fail_honestly_and_a_rerun_completes(
    demo: Path, tmp_path: Path, emulator: Any
) -> None:
    emulator.damage_next_outputs(5, "not-audio")  # 2 requests x 3 attempts = 6 outputs: one gets through
    out = tmp_path / "out"
    state = render_narration(script=str(demo), out_dir=str(out), return_state=True)
    manifest = manifest_of(out)
    if state.is_failed():
        failed = manifest.failed()
        assert failed and all("output rejected" in e for e in failed.values())
        assert all(manifest.segment(sid).attempts == 3 for sid in failed)
        assert manifest.state == "failed" and not (out / "narration.wav").exists()
    assert endpoint_instances() == (0, 0)
    emulator.damage_next_outputs(0, "drop")
    rerun = render_narration(script=str(demo), out_dir=str(out))
    done_before = sum(1 for s in manifest.segments if s.status == "done")
    assert rerun["cached"] == done_before and rerun["synthesised"] == 8 - done_before


def test_an_s3_upload_error_mid_fan_out_is_retried(demo: Path, tmp_path: Path) -> None:
    from botocore.exceptions import ClientError

    failures = {"left": 1}

    def fail_once(params: Any, **kwargs: Any) -> None:
        if "/requests/" in params.get("Key", "") and failures["left"] > 0:
            failures["left"] -= 1
            error = {"Code": "InternalError", "Message": "We encountered an internal error"}
            raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 500}}, "PutObject")

    events = boto3._get_default_session().events
    events.register("provide-client-params.s3.PutObject", fail_once)
    try:
        result = render_narration(script=str(demo), out_dir=str(tmp_path / "out"))
    finally:
        events.unregister("provide-client-params.s3.PutObject", fail_once)
    assert failures["left"] == 0 and result["synthesised"] == 8
    assert endpoint_instances() == (0, 0)


def test_a_cold_start_longer_than_the_invocation_timeout(
    demo: Path, tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests wait in the endpoint's queue while the instance starts; the invocation timeout only
    runs once an instance has the request, so a slow cold start does not fail them."""
    monkeypatch.setenv("NARRATE_INVOCATION_TIMEOUT_SECONDS", "60")  # x 0.02 time scale = 1.2 s
    get_settings.cache_clear()
    emulator.set_cold_start_seconds(3.0)
    result = render_narration(script=str(demo), out_dir=str(tmp_path / "out"))
    assert result["synthesised"] == 8 and manifest_of(tmp_path / "out").state == "completed"
    assert endpoint_instances() == (0, 0)


def test_a_model_that_does_not_load_fails_the_render_at_its_first_answer_and_a_fixed_rerun_completes(
    demo: Path, tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the real container toolkit does it: model_fn fails, the instance stays in service and refuses
    every request with the load error (loading again each time). narrate stops at the first such
    answer, scales the endpoint to zero and names what to fix; nothing is retried."""
    broken = tmp_path / "empty-checkpoint"
    broken.mkdir()
    monkeypatch.setenv("NARRATE_ENGINES", "dev,qwen")
    monkeypatch.setenv("NARRATE_QWEN_CUSTOM_VOICE_MODEL", str(broken))
    monkeypatch.setenv("NARRATE_QWEN_BASE_MODEL", "none")
    monkeypatch.setenv("NARRATE_BATCH_SIZE", "2")  # four requests: the first refusal stops the render
    get_settings.cache_clear()
    out = tmp_path / "out"
    loads_before = emulator.model_loads[get_settings().endpoint_name]
    started = time.monotonic()
    state = render_narration(script=str(demo), out_dir=str(out), return_state=True)
    assert state.is_failed() and time.monotonic() - started < 30  # not after any output deadline
    with pytest.raises(ModelNotLoaded, match="the model did not load"):
        state.result()
    manifest = manifest_of(out)
    assert manifest.state == "failed" and manifest.error is not None
    assert str(broken) in manifest.error and "NARRATE_QWEN_CUSTOM_VOICE_MODEL" in manifest.error
    assert all(s.attempts <= 1 and s.status != "done" for s in manifest.segments)  # nothing retried
    assert not (out / "narration.wav").exists() and endpoint_instances() == (0, 0)
    status = boto3.client("sagemaker").describe_endpoint(EndpointName=get_settings().endpoint_name)
    assert status["EndpointStatus"] == "InService"  # AWS does not fail the endpoint for this
    assert emulator.model_loads[get_settings().endpoint_name] - loads_before >= 2  # loaded per request

    monkeypatch.setenv("NARRATE_ENGINES", "dev")  # the cause fixed: a new configuration
    get_settings.cache_clear()
    result = render_narration(script=str(demo), out_dir=str(out))
    assert result["synthesised"] == 8 and manifest_of(out).state == "completed"
    assert endpoint_instances() == (0, 0)


def test_a_container_that_cannot_start_fails_the_endpoint_quoting_why_and_a_fixed_rerun_completes(
    demo: Path, tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A container that never passes its health check (a failed requirements install): the endpoint
    ends Failed, the render quotes FailureReason, the same configuration is refused at once, and a
    changed one replaces the failed endpoint."""
    emulator.faults.container_start_failure = (
        "CannotStartContainerError: pip install -r requirements.txt failed"
    )
    out = tmp_path / "out"
    try:
        state = render_narration(script=str(demo), out_dir=str(out), return_state=True)
        assert state.is_failed()
        manifest = manifest_of(out)
        assert manifest.state == "failed" and manifest.error is not None
        assert "is Failed" in manifest.error and "did not pass the ping health check" in manifest.error
        assert "pip install -r requirements.txt failed" in manifest.error  # the container's own reason
        assert not (out / "narration.wav").exists() and endpoint_instances() == (0, 0)

        # the same configuration again is refused at once, saying what to do
        again = render_narration(script=str(demo), out_dir=str(out), return_state=True)
        assert again.is_failed() and "configuration is unchanged" in (manifest_of(out).error or "")
    finally:
        emulator.faults.container_start_failure = None
    monkeypatch.setenv("NARRATE_MAX_CONCURRENT_INVOCATIONS", "3")  # the cause fixed: a new configuration
    get_settings.cache_clear()
    result = render_narration(script=str(demo), out_dir=str(out))
    assert result["synthesised"] == 8 and manifest_of(out).state == "completed"
    assert endpoint_instances() == (0, 0)


def test_an_endpoint_stuck_at_zero_fails_the_render_clearly_and_a_rerun_completes(
    demo: Path, tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from narrate.endpoints import get_endpoint

    endpoint = get_endpoint("sagemaker", get_settings())
    endpoint.ensure("setup")  # an endpoint that exists and sleeps at zero ...
    endpoint.scale_down("setup")
    assert wait_for(lambda: endpoint_instances() == (0, 0), 10)
    monkeypatch.setenv("NARRATE_WAKE_DEADLINE_SECONDS", "3")
    get_settings.cache_clear()
    emulator.withhold_capacity(True)  # ... and gets no instance (no capacity of the type in the region)
    synthesised_at_start = sum(emulator.synthesised.values())
    out = tmp_path / "out"
    try:
        state = render_narration(script=str(demo), out_dir=str(out), return_state=True)
        # no instance runs: the render released what it held; its requests wait, queued, for capacity
        # (the backlog alarm asks for an instance again once they are queued, which is the point)
        assert endpoint_instances()[1] == 0
    finally:
        emulator.withhold_capacity(False)
    assert state.is_failed()
    manifest = manifest_of(out)
    assert manifest.state == "failed" and "has no instance after 3 s" in (manifest.error or "")
    assert "a later run completes them" in (manifest.error or "")
    assert not any(s.status == "done" for s in manifest.segments)

    monkeypatch.setenv("NARRATE_WAKE_DEADLINE_SECONDS", "60")
    get_settings.cache_clear()
    result = render_narration(script=str(demo), out_dir=str(out))
    assert result["synthesised"] == 8 and manifest_of(out).state == "completed"
    # nothing submitted was lost: the re-run gathered the requests the failed render had queued
    assert sum(emulator.synthesised.values()) - synthesised_at_start == 8
    assert endpoint_instances() == (0, 0)
