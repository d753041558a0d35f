"""Nothing secret leaves a render: no credentials, presigned URLs or reference-audio bytes in the logs
(Python's and Prefect's), the artifacts, the manifest, the timeline, captions or error messages; no
trace of the signing key anywhere, the signed audio included."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import pytest

from flows.render_narration import render_narration
from narrate.aws.local import LocalAws
from narrate.endpoints import EndpointKind
from narrate.files import file_sha256
from narrate.outputs import RenderFolder
from narrate.provenance.config import trust_list
from narrate.provenance.verify import verify_file
from narrate.settings import get_settings
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


def test_a_signed_clone_render_carries_its_consent_and_leaks_no_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, tiny_clone_script: CloneScript, signing: Any
) -> None:
    """The clone's Content Credentials name its consent and the clip's SHA-256; the signing key (its PEM
    text, its DER and its raw scalar) is in no log, artifact or file of the render, WAV and MP3 included."""
    from cryptography.hazmat.primitives import serialization
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, LogFilter, LogFilterFlowRunId

    caplog.set_level(logging.DEBUG)
    out = tmp_path / "out"
    script = tiny_clone_script.script  # random weights say nothing: each scene gets 0.3 s to hold
    script.write_text(script.read_text().replace("text: Goodbye.}", "text: Goodbye., min_seconds: 0.3}"))
    kind = EndpointKind.INPROCESS
    state = render_narration(script=str(script), out_dir=str(out), backend=kind, return_state=True)
    assert state.is_completed()
    record = RenderFolder(out).provenance()
    assert record is not None
    consent = record.files["narration.wav"].claims.consent  # type: ignore[union-attr]
    assert consent is not None and consent.consent_id == tiny_clone_script.consent_id
    assert consent.reference_sha256 == file_sha256(tiny_clone_script.clip)
    assert consent.speaker_name == "Ada Lovelace" and consent.scope == "Acme product demos"
    read_back = verify_file(out / "narration.mp3", trust_list(get_settings()))  # the file itself says so
    assert read_back.passed and read_back.claims is not None and read_back.claims.consent == consent

    pem = signing.private_key.read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())  # fmt: skip
    secrets = [line for line in pem.splitlines() if b"PRIVATE KEY" not in line]
    secrets += [der, key.private_numbers().private_value.to_bytes(32, "big")]  # type: ignore[union-attr]
    with get_client(sync_client=True) as client:
        run_id = state.state_details.flow_run_id
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter())
    blobs = {
        "python logs": caplog.text.encode(),
        "prefect logs": "\n".join(log.message for log in logs).encode(),
        "artifacts": "\n".join(str(a.data) for a in artifacts).encode(),
        **{str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()},
    }
    assert {"narration.wav", "narration.mp3", "provenance.json"} <= set(blobs)
    assert "signed narration.wav" in caplog.text  # the scan reads the logs it should
    for name, blob in blobs.items():
        for secret in secrets:
            assert secret not in blob, f"the signing key is in {name}"
