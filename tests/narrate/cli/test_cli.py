"""The narrate command: exit codes by error, validation output, and a render through the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from narrate.cli.main import main
from tests.conftest import EXAMPLES, RANDOM_WEIGHTS_GATE_CHECKS


def test_validate_ok_and_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLES / "demo.yaml")]) == 0
    assert "valid" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: x\nvoice: {engine: dev}\nsegments: [{id: a, text: ''}]\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "segments[0] (id 'a').text: is empty" in err and str(bad) in err


def test_voice_engine_override_that_needs_more_settings_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["validate", str(EXAMPLES / "demo.yaml"), "--voice-engine", "qwen-clone"]) == 2
    assert "needs settings of its own" in capsys.readouterr().err


@pytest.mark.usefixtures("prefect_server", "embedded_aws")
def test_render_prints_where_the_files_are(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = Path(shutil.copy(EXAMPLES / "demo.yaml", tmp_path / "demo.yaml"))
    out = tmp_path / "out"
    assert main(["render", str(script), "--out", str(out), "--aws", "local"]) == 0
    err = capsys.readouterr().err
    assert str(out / "narration.wav") in err and "8 synthesised" in err
    assert "stages: ensure" in err and "GPU-seconds held" in err
    assert main(["render", str(script), "--out", str(out)]) == 0
    assert "8 cached, 0 synthesised" in capsys.readouterr().err


def test_package_lays_out_the_container_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import tarfile

    out = tmp_path / "model.tar.gz"
    assert main(["package", "--no-wheels", "--out", str(out)]) == 0
    with tarfile.open(out) as package:
        names = package.getnames()
    assert "code/inference.py" in names and "code/requirements.txt" in names
    assert "code/model_server/inference.py" in names and "code/model_server/engines/espeak.py" in names
    assert not any(n.startswith(("code/narrate/", "code/flows/", "code/tasks/")) for n in names)


@pytest.mark.usefixtures("embedded_aws")
def test_endpoint_commands_drive_the_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    def run(*args: str) -> dict[str, object]:
        assert main(list(args)) == 0
        return json.loads(capsys.readouterr().out)

    assert run("endpoint", "status")["status"] == "absent"
    deployed = run("deploy", "--no-wheels", "--create-role")
    assert str(deployed["uploaded"]).endswith("/model/model.tar.gz") and deployed["status"] == "InService"
    assert run("endpoint", "up")["created"] == []
    assert run("endpoint", "wake")["current_instances"] == 1
    assert run("endpoint", "sleep")["desired_instances"] == 0
    assert run("endpoint", "down")["status"] == "deleted"
    assert run("endpoint", "status")["status"] == "absent"


def test_real_aws_refuses_the_local_placeholders(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["endpoint", "status", "--aws", "real"]) == 2
    err = capsys.readouterr().err
    assert "--aws real needs your own NARRATE_ROLE_ARN" in err  # the tests set a bucket of their own


@pytest.mark.usefixtures("prefect_server", "embedded_aws")
def test_render_with_the_qwen_engine_from_a_local_model_directory(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tiny_checkpoints: dict[str, Path],
) -> None:
    """The demo, spoken by a named Qwen speaker: the container configuration travels from the
    settings through the SageMaker model's Environment to model_fn on the local instance."""
    import json

    import soundfile as sf

    from narrate.settings import get_settings

    monkeypatch.setenv("NARRATE_ENGINES", "qwen")
    monkeypatch.setenv("NARRATE_QWEN_CUSTOM_VOICE_MODEL", str(tiny_checkpoints["custom_voice"]))
    monkeypatch.setenv("NARRATE_QWEN_BASE_MODEL", "none")
    monkeypatch.setenv("NARRATE_QWEN_MAX_SEGMENT_SECONDS", "1")  # random weights never stop by themselves
    monkeypatch.setenv("NARRATE_GATE_CHECKS", RANDOM_WEIGHTS_GATE_CHECKS)
    get_settings.cache_clear()
    script = Path(shutil.copy(EXAMPLES / "demo.yaml", tmp_path / "demo.yaml"))
    out = tmp_path / "out"
    assert main(["render", str(script), "--out", str(out), "--voice-engine", "qwen-speaker"]) == 0
    assert "8 synthesised" in capsys.readouterr().err
    assert sf.info(str(out / "narration.wav")).samplerate == 24000
    timeline = json.loads((out / "timeline.json").read_text())
    assert timeline["model_id"] == tiny_checkpoints["custom_voice"].name  # not the hub model's name
    assert timeline["model_revision"].startswith("sha256:")


@pytest.mark.usefixtures("prefect_server")
def test_retry_and_runs_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], embedded_aws: Any
) -> None:
    script = Path(shutil.copy(EXAMPLES / "demo.yaml", tmp_path / "demo.yaml"))
    out = tmp_path / "out"
    embedded_aws.emulator.fail_segments_once({"filters", "alerts"})
    assert main(["render", str(script), "--out", str(out)]) == 4
    err = capsys.readouterr().err
    assert "2 segment(s) failed" in err and "filters: injected fault" in err
    assert main(["retry", str(out / "manifest.json")]) == 0
    err = capsys.readouterr().err
    assert "retried: alerts, filters" in err and str(out / "narration.wav") in err
    assert main(["retry", str(out / "manifest.json")]) == 0  # nothing left to do: re-assembles only
    assert "retried: nothing" in capsys.readouterr().err
    assert main(["retry", str(tmp_path / "missing.json")]) == 2
    assert "manifest:" in capsys.readouterr().err
    assert main(["runs", "--limit", "50"]) == 0
    listing = capsys.readouterr().out
    assert "render-" in listing and "retry-" in listing and "Failed" in listing and "Completed" in listing


def test_consent_create_writes_a_record_the_script_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ada.wav").write_bytes(b"RIFF....WAVE")
    out = tmp_path / "consent.json"
    args = ["consent", "create", "--clip", str(tmp_path / "ada.wav"), "--speaker", "Ada Lovelace"]
    assert main([*args, "--scope", "Acme product demos", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["speaker_name"] == "Ada Lovelace" and len(record["reference_sha256"]) == 64
    assert record["consent_id"] in capsys.readouterr().err
    script = tmp_path / "clone.yaml"
    script.write_text(
        "title: t\nvoice: {engine: qwen-clone, reference_clip: ada.wav, reference_text: Hi.,\n"
        "        consent: consent.json}\nsegments: [{id: a, text: Hello.}]\n"
    )
    assert main(["validate", str(script)]) == 0
    assert main([*args, "--scope", "x y z", "--expires-on", "tomorrow", "--out", str(out)]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err
