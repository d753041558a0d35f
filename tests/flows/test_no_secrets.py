"""Nothing secret leaves a render: no credentials, presigned URLs or reference-audio bytes in the logs
(Python's and Prefect's), the artifacts, the manifest, the timeline, captions or error messages."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from flows.render_narration import render_narration
from narrate.aws.local import LocalAws
from tests.conftest import CloneScript

pytestmark = pytest.mark.usefixtures("prefect_server", "embedded_aws")
FORBIDDEN = (
    "X-Amz-Signature",
    "X-Amz-Credential",
    "aws_secret_access_key",
    "AWS_SECRET_ACCESS_KEY",
    "Signature=",
)


def test_a_failed_clone_render_leaks_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, tiny_clone_script: CloneScript, embedded_aws: LocalAws
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, LogFilter, LogFilterFlowRunId

    script = tiny_clone_script.script
    clip_b64 = base64.b64encode(tiny_clone_script.clip.read_bytes()).decode()
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
