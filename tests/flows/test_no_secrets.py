"""Nothing secret leaves a render: no credentials, presigned URLs or reference-audio bytes in the logs
(Python's and Prefect's), the artifacts, the manifest, the timeline, captions or error messages."""

from __future__ import annotations

import base64
import logging
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from flows.render_narration import render_narration
from narrate.consent import create_consent, write_consent
from narrate.localaws import LocalAws
from narrate.settings import get_settings

pytestmark = pytest.mark.usefixtures("prefect_server", "embedded_aws")
FORBIDDEN = (
    "X-Amz-Signature",
    "X-Amz-Credential",
    "aws_secret_access_key",
    "AWS_SECRET_ACCESS_KEY",
    "Signature=",
)


def test_a_failed_clone_render_leaks_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tiny_checkpoints: dict[str, Path],
    embedded_aws: LocalAws,
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, LogFilter, LogFilterFlowRunId

    monkeypatch.setenv("NARRATE_ENGINES", "qwen")
    monkeypatch.setenv("NARRATE_QWEN_CUSTOM_VOICE_MODEL", "none")
    monkeypatch.setenv("NARRATE_QWEN_BASE_MODEL", str(tiny_checkpoints["voice_clone"]))
    monkeypatch.setenv("NARRATE_QWEN_MAX_SEGMENT_SECONDS", "1")
    get_settings.cache_clear()
    rate = 24000
    noise = np.random.default_rng(9).standard_normal(3 * rate).astype(np.float32) * 0.1
    sf.write(tmp_path / "ada.wav", noise, rate)
    clip_b64 = base64.b64encode((tmp_path / "ada.wav").read_bytes()).decode()
    write_consent(create_consent(tmp_path / "ada.wav", "Ada", "demos", date(2026, 1, 5)), tmp_path / "c.json")
    script = tmp_path / "clone.yaml"
    script.write_text(
        "title: Cloned\nvoice: {engine: qwen-clone, reference_clip: ada.wav, reference_text: This is Ada.,\n"
        "        consent: c.json}\nsegments: [{id: a, text: Hello there.}, {id: b, text: Goodbye.}]\n"
    )
    assert embedded_aws.emulator is not None
    embedded_aws.emulator.fail_segments_once({"b"})  # an error message in every record, too
    caplog.set_level(logging.INFO)
    state = render_narration(script=str(script), out_dir=str(tmp_path / "out"), return_state=True)
    assert state.is_failed()

    with get_client(sync_client=True) as client:
        run_id = state.state_details.flow_run_id
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter())
    texts = {
        "python logs": caplog.text,
        "prefect logs": "\n".join(log.message for log in logs),
        "artifacts": "\n".join(str(a.data) for a in artifacts),
        "state message": str(state.message),
        **{
            p.name: p.read_text()
            for p in (tmp_path / "out").glob("*")
            if p.suffix in {".json", ".vtt", ".srt"}
        },
    }
    assert "injected fault" in texts["manifest.json"]  # the scan reads what it should
    for name, text in texts.items():
        assert clip_b64[100:160] not in text, f"reference-audio bytes in {name}"
        for marker in FORBIDDEN:
            assert marker not in text, f"{marker} in {name}"
