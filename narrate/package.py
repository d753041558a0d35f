"""Build model.tar.gz for the SageMaker Hugging Face container: the handler under code/, its
requirements, and (optionally) vendored wheels so the endpoint needs no internet at start."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import model_server
from narrate.errors import ConfigError
from narrate.storage import write_atomic

CONTAINER_REQUIREMENTS = ["pydantic>=2.7,<3", "numpy>=1.26", "soundfile>=0.12", "espeakng-loader==0.2.4"]
CONTAINER_PYTHON = "3.12"
CONTAINER_MODEL_DIR = "/opt/ml/model"  # the Hugging Face PyTorch inference image's interpreter
ENTRY_POINT = "from model_server.inference import input_fn, model_fn, output_fn, predict_fn  # noqa: F401\n"


def download_wheels(folder: Path) -> None:
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", str(folder),
        "--platform", "manylinux2014_x86_64", "--python-version", CONTAINER_PYTHON, *CONTAINER_REQUIREMENTS,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ConfigError(f"could not download the container's wheels: {result.stderr.strip()[-400:]}")


def build_model_package(destination: Path, vendor_wheels: bool = True) -> Path:
    """Write the tarball atomically; model files would sit at its root, code under code/."""
    server_root = Path(model_server.__file__).parent
    with tempfile.TemporaryDirectory() as scratch:
        wheels = Path(scratch) / "wheels"
        wheels.mkdir()
        if vendor_wheels:
            download_wheels(wheels)
        requirements = (
            ["--no-index", "--find-links ./wheels", *CONTAINER_REQUIREMENTS]
            if vendor_wheels
            else CONTAINER_REQUIREMENTS
        )

        def write(tmp: Path) -> None:
            with tarfile.open(tmp, "w:gz") as tar:
                _add_bytes(tar, "code/inference.py", ENTRY_POINT.encode())
                _add_bytes(tar, "code/requirements.txt", ("\n".join(requirements) + "\n").encode())
                for path in sorted(server_root.rglob("*.py")):
                    tar.add(path, f"code/model_server/{path.relative_to(server_root)}", recursive=False)
                for wheel in sorted(wheels.glob("*.whl")):
                    tar.add(wheel, f"code/wheels/{wheel.name}")

        return write_atomic(destination, write)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))
