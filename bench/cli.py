"""How long a person waits for ``narrate render examples/demo.yaml``: the all-cached render (the second
run of the README's demo) against the time Python needs to import Prefect and the flow, with the
background Prefect server the CLI shares between commands; and the first render of a new script with
that server against Prefect's temporary server per command (``NARRATE_PREFECT_SERVER=temporary``, what
every command paid before the background server).

Target (docs/BENCHMARKS.md): all-cached wall <= 2x the import; first render with the background server
no slower than with a temporary one. Every command runs as a person runs it, a fresh ``narrate``
process in a project folder of its own, timed from start to exit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import median

ROOT = Path(__file__).resolve().parents[1]
IMPORT = [sys.executable, "-c", "import prefect, flows.render_narration"]


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return seconds


def project(scratch: Path, name: str, mode: str) -> tuple[Path, dict[str, str]]:
    """A folder with the examples, its own cache, state and Prefect home; the CLI's environment there."""
    folder = scratch / name
    shutil.copytree(ROOT / "examples", folder / "examples")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "NARRATE_"))}
    env |= {"PREFECT_HOME": str(folder / ".prefect"), "NARRATE_PREFECT_SERVER": mode, "PYTHONPATH": str(ROOT)}
    return folder, env


def render(folder: Path, env: dict[str, str], extra: list[str]) -> float:
    command = [sys.executable, "-m", "narrate.cli", "render", "examples/demo.yaml", *extra]
    return timed(command, folder, env)


def fresh_cache(folder: Path) -> None:
    shutil.rmtree(folder / ".narrate", ignore_errors=True)
    shutil.rmtree(folder / "renders", ignore_errors=True)


def main(smoke: bool = False, runs: int | None = None) -> int:
    runs = runs or (1 if smoke else 5)
    extra = ["--voice-engine", "dev"] if smoke else []  # smoke: the lifecycle, not the voice
    with tempfile.TemporaryDirectory() as name:
        scratch = Path(name)
        background, background_env = project(scratch, "background", "background")
        temporary, temporary_env = project(scratch, "temporary", "temporary")
        try:
            imports = [timed(IMPORT, ROOT, background_env) for _ in range(runs)]
            render(background, background_env, extra)  # starts the background server once
            first: dict[str, list[float]] = {"background": [], "temporary": []}
            for _ in range(1 if smoke else max(1, runs // 2)):
                fresh_cache(background)
                first["background"].append(render(background, background_env, extra))
                if not smoke:
                    fresh_cache(temporary)
                    first["temporary"].append(render(temporary, temporary_env, extra))
            cached = [render(background, background_env, extra) for _ in range(runs)]
            cached_temporary = [] if smoke else [render(temporary, temporary_env, extra) for _ in range(2)]
        finally:
            subprocess.run([sys.executable, "-m", "narrate.cli", "server", "stop"], cwd=background,
                           env=background_env, capture_output=True)  # fmt: skip
    ratio = median(cached) / median(imports)
    print(f"narrate render examples/demo.yaml{' ' + ' '.join(extra) if extra else ''}, medians of {runs}:")
    print(f"  python -c 'import prefect, flows.render_narration'  {median(imports):6.2f} s")
    print(f"  all-cached render, background server               {median(cached):6.2f} s  "
          f"({ratio:.2f}x the import; target <= 2x: {'met' if ratio <= 2 else 'NOT MET'})")  # fmt: skip
    if cached_temporary:
        print(f"  all-cached render, temporary server per command    {median(cached_temporary):6.2f} s")
    print(f"  first render of a new script, background server    {median(first['background']):6.2f} s")
    if first["temporary"]:
        slower = median(first["background"]) / median(first["temporary"])
        print(f"  first render of a new script, temporary server     {median(first['temporary']):6.2f} s  "
              f"(background / temporary {slower:.2f})")  # fmt: skip
    return 0
