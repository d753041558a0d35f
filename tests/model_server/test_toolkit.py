"""The container contract, tested against the real SageMaker Hugging Face inference toolkit (2.6.0, with
sagemaker-inference 1.10.1 and multi-model-server 1.1.11, as the 2.6 image pins them): the
``model.tar.gz`` that ``narrate package`` builds is extracted and loaded by multi-model-server's own
model loader and answered through its worker's ``Service.predict``, which is what runs in the image.

The toolkit lives in a scratch virtual environment the test builds (from the package index, no
dependencies of its own installed): its dependency pyctcdecode pins numpy below 2, which would break
this one. The scratch environment sees this one's packages behind its own (a .pth file), so torch,
transformers and qwen-tts are the ones the tests use; what the toolkit's requirements install adds
goes into the scratch environment only.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from narrate.aws import package as package_module
from narrate.aws.package import build_model_package

TOOLKIT = (
    "sagemaker-huggingface-inference-toolkit==2.6.0",
    "sagemaker-inference==1.10.1",
    "multi-model-server==1.1.11",
    "retrying==1.3.7",
)
DRIVER = Path(__file__).with_name("toolkit_driver.py")


@pytest.fixture(scope="session")
def toolkit_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("toolkit-venv")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(root)], check=True)
    python = root / "bin" / "python"
    scratch_site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    Path(scratch_site, "narrate_test_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check", *TOOLKIT],
        check=True,
    )
    return python


def extracted(package: Path, model_dir: Path) -> Path:
    model_dir.mkdir(parents=True)
    with tarfile.open(package) as tar:
        tar.extractall(model_dir, filter="data")
    return model_dir


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("package")
    return extracted(
        build_model_package(work / "model.tar.gz", vendor_wheels=False), work / "opt-ml" / "model"
    )


def serve(
    python: Path, model_dir: Path, cases: list[dict[str, Any]], environment: dict[str, str]
) -> list[dict[str, Any]]:
    work = model_dir.parent
    (work / "cases.json").write_text(json.dumps(cases))
    env = os.environ | {"SAGEMAKER_PROGRAM": "inference.py", "HF_HUB_OFFLINE": "1"} | environment
    result = subprocess.run(
        [python, DRIVER, "serve", str(model_dir), str(work / "cases.json"), str(work / "results.json")],
        env=env, cwd=work, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((work / "results.json").read_text())


def case(
    body: dict[str, Any] | str, content_type: str = "application/json", accept: str | None = None
) -> dict[str, Any]:
    data = body if isinstance(body, str) else json.dumps(body)
    return {
        "body_b64": base64.b64encode(data.encode()).decode(),
        "content_type": content_type,
        "accept": accept,
    }


def wav_of(result: dict[str, Any]) -> tuple[np.ndarray, int]:
    body = base64.b64decode(result["body_b64"])
    if result["content_type"] != "audio/wav":
        body = base64.b64decode(json.loads(body)["audio_base64"])
    audio, rate = sf.read(io.BytesIO(body), dtype="float32")
    return audio, rate


def reference_wav_b64() -> str:
    buffer = io.BytesIO()
    noise = np.random.default_rng(3).standard_normal(3 * 24000).astype(np.float32) * 0.1
    sf.write(buffer, noise, 24000, format="WAV")
    return base64.b64encode(buffer.getvalue()).decode()


def test_the_reference_clients_payloads_the_batch_form_and_bad_input(
    toolkit_python: Path, model_dir: Path, tiny_checkpoints: dict[str, Path]
) -> None:
    speaker = {"mode": "custom_voice", "text": "Hello there.", "language": "en", "speaker": "Aiden"}
    clone = {"mode": "voice_clone", "text": "Hi.", "language": "en", "ref_audio": reference_wav_b64(),
             "ref_text": "This is Ada."}  # fmt: skip
    cases = [
        case(speaker),
        case(speaker | {"instruct": "calm, clear, professional narration"}),
        case(clone),
        case({"text": "No mode, no language.", "language": None, "speaker": "aiden", "instruct": ""}),
        case(speaker, "application/json; charset=utf-8"),  # arrives as bytes
        case(speaker, accept="audio/wav"),
        case({"voice": {"mode": "dev"}, "segments": [{"id": "a", "text": "One."}, {"id": "b", "text": " "}]}),
        case({"mode": "whisper", "text": "x"}),
        case(clone | {"ref_text": ""}),  # what the reference CLI sends without a transcript
        case("not json"),
    ]
    environment = {
        "NARRATE_ENGINES": "dev,qwen",
        "NARRATE_QWEN_CUSTOM_VOICE_MODEL": str(tiny_checkpoints["custom_voice"]),
        "NARRATE_QWEN_BASE_MODEL": str(tiny_checkpoints["voice_clone"]),
        "NARRATE_QWEN_MAX_SEGMENT_SECONDS": "1",
    }
    results = serve(toolkit_python, model_dir, cases, environment)
    for index in range(6):
        assert results[index]["code"] == 200, results[index]
        audio, rate = wav_of(results[index])
        assert rate == 24000 and audio.size > 0
    assert results[5]["content_type"] == "audio/wav"
    batch = json.loads(base64.b64decode(results[6]["body_b64"]))
    assert results[6]["code"] == 200 and batch["segments"][0]["num_samples"] > 0
    assert "text" in batch["segments"][1]["error"] and batch["segments"][1]["retryable"] is False
    assert results[7]["code"] == 400 and "mode: unknown mode" in results[7]["message"]
    assert results[8]["code"] == 400 and "ref_text" in results[8]["message"]
    assert results[9]["code"] == 400 and "body: not valid JSON" in results[9]["message"]


def test_a_model_that_does_not_load_is_refused_on_every_request_and_loaded_again(
    toolkit_python: Path, model_dir: Path
) -> None:
    """The container keeps serving: each request runs model_fn again and is answered 400 with its error,
    whose first words narrate recognises (MODEL_LOAD_FAILED)."""
    results = serve(
        toolkit_python, model_dir, [case({"text": "a"}), case({"text": "b"})], {"NARRATE_ENGINES": "nope"}
    )
    for result in results:
        assert result["code"] == 400
        assert result["message"].startswith("the model did not load (engines 'nope')")
        assert "NARRATE_ENGINES: unknown engine(s) ['nope']" in result["message"]


def test_the_toolkits_own_requirements_install_works_offline_from_the_vendored_wheels(
    toolkit_python: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Wheels resolved for this interpreter, so that pip really installs what this environment (the
    stand-in for the image, behind the toolkit's) lacks; the image's packages are only checked."""
    monkeypatch.setattr(package_module, "CONTAINER_PYTHON", f"{sys.version_info[0]}.{sys.version_info[1]}")
    package = build_model_package(tmp_path / "model.tar.gz", vendor_wheels=True)
    extracted(package, tmp_path / "opt-ml" / "model")
    env = os.environ | {"SAGEMAKER_BASE_DIR": str(tmp_path / "opt-ml"), "PIP_NO_INDEX": "1"}
    result = subprocess.run(
        [toolkit_python, DRIVER, "install"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "installed from" in result.stdout
    show = "import transformers, accelerate; print(transformers.__version__, accelerate.__version__)"
    versions = subprocess.run(
        [toolkit_python, "-c", show], capture_output=True, text=True, check=True
    ).stdout.split()
    assert versions == ["4.57.3", "1.12.0"]


def test_the_piper_voice_through_the_toolkit(toolkit_python: Path, model_dir: Path) -> None:
    """The neural voice a new user hears first, served by the same package a real endpoint loads."""
    single = {"mode": "piper", "text": "Press Connect to continue.", "language": "en"}
    batch = {
        "voice": {"mode": "piper", "language": "en"},
        "segments": [{"id": "a", "text": "Select orders and customers."}, {"id": "b", "text": "..."}],
        "generation": {"seed": 3},
    }
    cases = [
        case(single),
        case(single, accept="audio/wav"),
        case(batch),
        case(single | {"language": "de"}),
        case({"mode": "dev", "text": "x"}),
    ]
    results = serve(toolkit_python, model_dir, cases, {"NARRATE_ENGINES": "piper"})
    assert [r["code"] for r in results] == [200, 200, 200, 400, 400], results
    audio, rate = wav_of(results[0])
    assert rate == 22050 and audio.size > rate
    assert np.array_equal(wav_of(results[1])[0], audio)  # the same take, as JSON and as a WAV
    answer = json.loads(base64.b64decode(results[2]["body_b64"]))
    assert answer["model_id"] == "piper" and answer["segments"][0]["num_samples"] > 0
    assert answer["segments"][1]["error"] == "text: produced no audio (nothing speakable)"
    assert "language: the Piper voice 'joe' speaks english only" in results[3]["message"]
    assert "mode: 'dev' is not served by this endpoint (serves: piper)" in results[4]["message"]
