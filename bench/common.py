"""Helpers shared by the benchmarks: a bench-only instant engine, a running local Prefect server,
narrate's folders per run, child processes measured with ``/usr/bin/time -v``, and medians.

Nothing here ships with the product: the instant engine is registered into the handler's
``ENGINE_FACTORIES`` by the benchmark that needs it, in the benchmark's own process.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

INSTANT_ENGINE = "bench-instant"
SENTENCES = (
    "Open the dashboard and pick a data source.",
    "The chart updates as soon as you drag a field onto it.",
    "Filters apply to every widget on the page at once.",
    "Share a live link with your team in one click.",
    "Alerts tell you when a number moves more than you expect.",
)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def speech_like_clip(samples: int, rate: int, seed: int = 0) -> np.ndarray:
    """Float32 mono: a syllable-modulated tone with noise, silent for 50 ms at each end (so trimming
    has something to cut), level around -20 dBFS."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples, dtype=np.float64) / rate
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t) ** 2
    audio = (0.1 * np.sin(2 * np.pi * 180.0 * t) + 0.02 * rng.standard_normal(samples)) * envelope
    edge = min(samples // 4, round(0.05 * rate))
    audio[:edge] = 0
    audio[samples - edge :] = 0
    return audio.astype(np.float32)


INSTANT_ENGINE_GATE = "silence,clipping,level,frame_cap,similarity"


class InstantEngine:
    """Serves the ``dev`` mode with one precomputed clip for every segment: no synthesis cost, so a
    render through it times only the pipeline (requests, handler hooks, outputs, cache, assembly)."""

    modes = frozenset({"dev"})
    model_id = "espeak-ng"
    revision = "bench-instant"

    def __init__(self, seconds: float = 0.25) -> None:
        from model_server.voices import NATIVE_SAMPLE_RATES

        self.sample_rate = NATIVE_SAMPLE_RATES["dev"]
        self.clip = speech_like_clip(round(seconds * self.sample_rate), self.sample_rate)
        self.segments = 0

    def synthesize(self, voice: object, segments: list[Any], generation: Any) -> list[Any]:
        from model_server.protocol import SegmentAudio

        self.segments += len(segments)
        return [SegmentAudio(id=s.id, audio=self.clip, sample_rate=self.sample_rate) for s in segments]

    def close(self) -> None:
        pass


def register_instant_engine(seconds: float = 0.25) -> None:
    """Make ``NARRATE_ENGINES=bench-instant`` load an InstantEngine (this process only)."""
    from model_server.config import ENGINE_MODES
    from model_server.inference import ENGINE_FACTORIES

    ENGINE_FACTORIES[INSTANT_ENGINE] = lambda config, model_dir: {INSTANT_ENGINE: InstantEngine(seconds)}
    ENGINE_MODES[INSTANT_ENGINE] = InstantEngine.modes
    os.environ["NARRATE_ENGINES"] = INSTANT_ENGINE
    # One short clip for every text: its length says nothing of the text, so the gate's duration
    # check is off; every other check of a rule-based voice measures and judges each clip as usual.
    os.environ.setdefault("NARRATE_GATE_CHECKS", INSTANT_ENGINE_GATE)


def write_script(
    path: Path, segments: int, formats: Sequence[str] = ("wav",), edit: int | None = None
) -> Path:
    """A dev-voice script of ``segments`` distinct texts; ``edit`` changes the text of that one."""
    rows = []
    for i in range(segments):
        text = f"Step {i}. {SENTENCES[i % len(SENTENCES)]}"
        if i == edit:
            text += " Edited."
        rows.append({"id": f"s{i:04d}", "text": text})
    data = {
        "title": f"Benchmark, {segments} segments",
        "voice": {"engine": "dev", "language": "en"},
        "output": {"formats": list(formats)},
        "segments": rows,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def use_dirs(work: Path, cache: str) -> None:
    """Point narrate's cache and state at ``work`` (a fresh cache name = a cold cache)."""
    from narrate.endpoints import reset_endpoints
    from narrate.settings import get_settings

    os.environ.update(
        NARRATE_CACHE_DIR=str(work / cache),
        NARRATE_STATE_DIR=str(work / "state"),
        NARRATE_RENDERS_DIR=str(work / "renders"),
        NARRATE_ENDPOINT_NAME="narrate-bench",
        NARRATE_BUCKET="narrate-bench",
    )
    get_settings.cache_clear()
    reset_endpoints()


@contextmanager
def local_prefect_server() -> Iterator[str]:
    """A real Prefect API server on 127.0.0.1 (fresh SQLite database) for the duration; its URL is
    exported as PREFECT_API_URL so child processes use it too."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_UI_ENABLED", "false")
    import prefect.settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=240):
        url = str(prefect.settings.get_current_settings().api.url)
        previous = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = url
        try:
            yield url
        finally:
            if previous is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = previous


@dataclass(frozen=True)
class ChildResult:
    data: dict[str, Any]
    peak_rss_mb: float  # as /usr/bin/time -v reports it (the child's own maximum otherwise)


def run_child(module: str, args: Sequence[str]) -> ChildResult:
    """Run ``python -m <module> <args>`` and read the JSON its last stdout line holds; under
    ``/usr/bin/time -v`` when present, whose "Maximum resident set size" is the peak RSS."""
    command = [sys.executable, "-m", module, *args]
    timer = shutil.which("time", path="/usr/bin")
    if timer:
        command = [timer, "-v", *command]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        output = f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{output}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    peak = int(match.group(1)) / 1024 if match else float(data.get("peak_rss_mb", "nan"))
    return ChildResult(data, peak)


def verdict(met: bool) -> str:
    return "met" if met else "NOT MET"
