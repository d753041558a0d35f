"""Cold start of the real container, measured as far as this machine can: the parts of a scale-from-zero
start that are narrate's (SageMaker's instance provisioning and image pull are not measurable here).

1. ``model.tar.gz``: its size, built two ways in the same run: every wheel vendored but torch's
   (``IMAGE_TORCH_ONLY``: what ``narrate package`` did before issue 19) and only what the image lacks
   (``IMAGE_PROVIDES``: shipped). Wheels come from the user cache, so the build time is the tarball's.
2. Extraction: SageMaker downloads the tarball and untars it into ``/opt/ml/model``: the untar, timed.
3. The toolkit's requirements install (``python -m pip install -r code/requirements.txt``, what
   sagemaker-inference runs before the server starts) into a stand-in for the image: a virtual
   environment holding the image's packages at the versions narrate assumes (``IMAGE_PROVIDES``, and
   the transformers 4.49.0 stack the install replaces), torch seen from this environment. A fresh copy
   per run. The wheels are resolved for this machine's Python (the image's is 3.12: the same packages,
   the same work).
4. ``model_fn``: the default engines' load through the handler (on a GPU the Qwen models' load and
   graph capture are measured by ``python -m bench model-server``).

The container's part of a cold start is 2 + 3 of the shipped package (local mode runs the real
``model_fn`` on top): ``NARRATE_LOCAL_COLD_START_SECONDS`` set to it makes local mode start like the
container; its default stays short so that the README's demo renders in seconds.

``--smoke``: the tarball without wheels, its extraction and ``model_fn``; nothing downloaded.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

from bench.common import median

# What the image holds that the install replaces (transformers[...]==4.49.0's own pins at the image's build).
IMAGE_REPLACED = (
    "transformers==4.49.0", "huggingface_hub==0.29.1", "tokenizers==0.21.1", "accelerate==1.4.0",
    "soundfile==0.13.1", "typing_extensions==4.13.0", "fsspec==2025.3.0", "protobuf==6.30.2",
)  # fmt: skip


@dataclass(frozen=True)
class Package:
    name: str
    bytes: int
    build_s: float
    extract_s: list[float]
    install_s: list[float]


def main(smoke: bool = False, runs: int | None = None) -> int:
    from narrate.aws import package as packaging

    runs = runs or (1 if smoke else 3)
    this_python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    packaging.CONTAINER_PYTHON = this_python  # wheels this interpreter installs (the image's: 3.12)
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        ways = {"before: every wheel but torch's": packaging.IMAGE_TORCH_ONLY}
        ways = {} if smoke else ways
        ways["after: only what the image lacks"] = packaging.IMAGE_PROVIDES
        image = None if smoke else stand_in_image(scratch / "image", packaging.IMAGE_PROVIDES)
        measured = [measure(scratch, name, provides, image, runs) for name, provides in ways.items()]
        load_s = model_load_seconds(runs)
    return report(measured, load_s, this_python, smoke)


def measure(scratch: Path, name: str, provides: Sequence[str], image: Path | None, runs: int) -> Package:
    from narrate.aws.package import build_model_package

    tarball = scratch / f"{len(provides)}.tar.gz"
    started = time.perf_counter()
    build_model_package(tarball, vendor_wheels=image is not None, image=provides)
    build_s = time.perf_counter() - started
    extract_s, install_s = [], []
    for run in range(runs):
        model = scratch / f"model-{len(provides)}-{run}"
        extract_s.append(timed(_untar, tarball, model))
        if image is not None:
            install_s.append(install_seconds(image, scratch / f"env-{len(provides)}-{run}", model))
        shutil.rmtree(model)
    print(f"  {name}: {tarball.stat().st_size / 2**20:.1f} MiB, extract {extract_s}, install {install_s}")
    return Package(name, tarball.stat().st_size, build_s, extract_s, install_s)


def install_seconds(image: Path, environment: Path, model: Path) -> float:
    """The toolkit's install into a fresh copy of the stand-in image, timed."""
    shutil.copytree(image, environment, symlinks=True)
    python = environment / "bin" / "python"
    requirements = model / "code" / "requirements.txt"
    command = [
        str(python),
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "-q",
        "-r",
        str(requirements),
    ]
    seconds = timed(_run, command, model)
    shutil.rmtree(environment)
    return seconds


def stand_in_image(folder: Path, provides: Sequence[str]) -> Path:
    """A virtual environment with the image's packages (from the package index) and this one's torch."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    pins = [p for p in provides if not p.startswith(("torch==", "torchaudio=="))] + list(IMAGE_REPLACED)
    pins.append("setuptools==78.1.0")  # the Dockerfile's setuptools>=70.0.0 at the build date (torch's)
    _run([str(folder / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
          "--no-deps", *pins])  # fmt: skip
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    found = subprocess.run(
        [str(folder / "bin" / "python"), "-c", where], capture_output=True, text=True, check=True
    )
    site = Path(found.stdout.strip())
    torch_site = folder / "torch-site"
    link_distributions(torch_site, ["torch", "torchaudio"])
    (site / "zz_image_torch.pth").write_text(f"{torch_site}\n")  # after the image's own packages
    return folder


def link_distributions(folder: Path, roots: list[str]) -> None:
    """Symlinks to these distributions of this environment and everything they need."""
    folder.mkdir(parents=True)
    seen: set[str] = set()
    queue = list(roots)
    while queue:
        name = queue.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in distribution.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                queue.append(requirement.name)
        base = Path(str(distribution.locate_file("")))
        tops = {Path(str(f)).parts[0] for f in distribution.files or [] if not str(f).startswith("..")}
        for top in tops:
            if not (folder / top).exists() and (base / top).exists():
                (folder / top).symlink_to(base / top)


def model_load_seconds(runs: int) -> list[float]:
    """The handler's model_fn with the container's default engines (dev, piper), in a fresh process."""
    code = "import time; t = time.perf_counter(); from model_server import inference; " \
           "inference.model_fn('.'); print(time.perf_counter() - t)"  # fmt: skip
    return [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout.split()[-1]) for _ in range(runs)]  # fmt: skip


def timed(action: Callable[..., object], *args: object) -> float:
    started = time.perf_counter()
    action(*args)
    return round(time.perf_counter() - started, 2)


def _untar(tarball: Path, folder: Path) -> None:
    with tarfile.open(tarball) as tar:
        tar.extractall(folder, filter="data")


def _run(command: list[str], cwd: Path | None = None) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{command[:4]} failed: {result.stdout[-1500:]}{result.stderr[-1500:]}")


def report(measured: list[Package], load_s: list[float], python: str, smoke: bool) -> int:
    print(f"\ncold start parts (Python {python}, median of {len(measured[0].extract_s)} runs)\n")
    print("| package | model.tar.gz MiB | build s | extract s | requirements install s |")
    print("|---|---|---|---|---|")
    for package in measured:
        install = f"{median(package.install_s):.1f}" if package.install_s else "-"
        print(f"| {package.name} | {package.bytes / 2**20:.1f} | {package.build_s:.1f} | "
              f"{median(package.extract_s):.1f} | {install} |")  # fmt: skip
    print(f"\nmodel_fn (default engines dev, piper): {median(load_s):.1f} s (runs {load_s})")
    shipped = measured[-1]
    if shipped.install_s:
        ours = median(shipped.extract_s) + median(shipped.install_s)
        print(
            f"extract + install of the shipped package: {ours:.1f} s "
            "(NARRATE_LOCAL_COLD_START_SECONDS for a local mode that starts like the container)"
        )
    if smoke:
        print("smoke: no wheels, no install measured")
    return 0
