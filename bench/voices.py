"""The offline voices side by side: piper (neural, the default) against dev (eSpeak NG, the baseline).

Part 1, the engines: every segment of ``examples/demo.yaml`` through the container handler's hooks
(``input_fn`` -> ``predict_fn`` -> ``output_fn``, one segment a request, as the endpoint serves
them), both engines loaded in this process and timed alternately in each run, so the machine's load
falls on both alike. Reported per engine: load time, synthesis time, seconds of speech, and the
real-time factor (seconds of speech per second of synthesis); the ratio is piper's against dev's.

Part 2, the demo render: ``narrate render examples/demo.yaml`` as a user runs it (embedded AWS, local
endpoint with its simulated 3 s cold start), in a fresh cache each time, with the default voice and
with ``--voice dev``; the Prefect server is started once beforehand (``PREFECT_API_URL``), so the
figure is the render's own wall time, not the temporary server's start.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile as sf

from bench.common import local_prefect_server, median

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo.yaml"
VOICES = {"piper": {"mode": "piper", "language": "en"}, "dev": {"mode": "dev", "language": "en"}}
DEMO_VOICES = {"piper": [], "dev": ["--voice", "dev"]}  # the demo's default voice is piper


@dataclass(frozen=True)
class EngineRun:
    synthesis_seconds: float
    speech_seconds: float

    @property
    def real_time_factor(self) -> float:
        return self.speech_seconds / self.synthesis_seconds


def demo_texts(limit: int | None) -> list[str]:
    from narrate.script import load_script

    texts = [segment.text for segment in load_script(DEMO).segments]
    return texts[:limit] if limit else texts


def load_engines() -> tuple[Any, dict[str, float]]:
    from model_server import inference
    from model_server.config import ServerConfig

    loads = {}
    model = inference.LoadedModel()
    for name in VOICES:
        started = time.perf_counter()
        model.engines.update(inference.ENGINE_FACTORIES[name](ServerConfig(engines=name), ""))
        loads[name] = time.perf_counter() - started
    return model, loads


def speak(model: Any, voice: dict[str, str], texts: list[str]) -> EngineRun:
    from model_server import inference

    synthesis = speech = 0.0
    for index, text in enumerate(texts):
        body = {"voice": voice, "segments": [{"id": f"s{index}", "text": text}], "generation": {"seed": 0}}
        started = time.perf_counter()
        parsed = inference.input_fn(json.dumps(body), "application/json")
        reply = inference.output_fn(inference.predict_fn(parsed, model), "application/json")
        synthesis += time.perf_counter() - started
        (segment,) = json.loads(reply)["segments"]
        info = sf.info(io.BytesIO(base64.b64decode(segment["audio_base64"])))
        speech += info.frames / info.samplerate
    return EngineRun(synthesis, speech)


def render_demo(voice: str, work: Path, run: int) -> float:
    env = {
        **os.environ,
        "NARRATE_CACHE_DIR": str(work / f"cache-{voice}-{run}"),
        "NARRATE_STATE_DIR": str(work / f"state-{voice}-{run}"),
    }
    out = work / f"render-{voice}-{run}"
    command = [sys.executable, "-m", "narrate.cli.main", "render", str(DEMO), "--out", str(out)]
    started = time.perf_counter()
    result = subprocess.run([*command, *DEMO_VOICES[voice]], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        output = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        raise RuntimeError(f"demo render with {voice} failed:\n{output}")
    return seconds


def main(smoke: bool = False, runs: int | None = None, segments: int | None = None) -> int:
    runs = runs or (1 if smoke else 5)
    texts = demo_texts(segments or (2 if smoke else None))
    model, loads = load_engines()
    speak(model, VOICES["dev"], texts[:1]), speak(model, VOICES["piper"], texts[:1])  # first-call costs
    results: dict[str, list[EngineRun]] = {name: [] for name in VOICES}
    for _ in range(runs):
        for name, voice in VOICES.items():
            results[name].append(speak(model, voice, texts))
    rtf = {name: median([r.real_time_factor for r in rs]) for name, rs in results.items()}
    print(f"offline voices, {len(texts)} demo segment(s) through the handler hooks, {runs} run(s) (medians):")
    for name, rs in results.items():
        synthesis, speech = median([r.synthesis_seconds for r in rs]), median([r.speech_seconds for r in rs])
        print(f"  {name:5}  load {loads[name]:5.2f} s   synthesis {synthesis:6.2f} s   speech {speech:6.2f} s"
              f"   {rtf[name]:6.1f}x real time")  # fmt: skip
    print(f"  piper's real-time factor / dev's: {rtf['piper'] / rtf['dev']:.3f}")
    if smoke:
        print("  smoke mode: the demo render is not timed")
        return 0 if all(value > 0 for value in rtf.values()) else 1
    walls: dict[str, list[float]] = {name: [] for name in DEMO_VOICES}
    with local_prefect_server(), tempfile.TemporaryDirectory() as scratch:
        for run in range(runs):
            for name in DEMO_VOICES:
                walls[name].append(render_demo(name, Path(scratch), run))
    print(f"demo render (narrate render examples/demo.yaml, cold cache, running Prefect server), "
          f"{runs} run(s):")  # fmt: skip
    for name, seconds in walls.items():
        print(f"  {name:5}  wall {median(seconds):6.2f} s   runs {', '.join(f'{s:.2f}' for s in seconds)}")
    print(f"  piper / dev wall time: {median(walls['piper']) / median(walls['dev']):.3f}")
    return 0
