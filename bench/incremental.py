"""Incremental re-render: a script rendered once, one segment edited, rendered again.

The dev voice (eSpeak NG, real synthesis) through the real ``render_narration`` flow with backend
``inprocess`` (the container handler in this process, no embedded AWS), against a running local
Prefect server. The engine is wrapped (bench only) to count the segments it synthesises and the
times it is loaded (a wake). Per run, in a fresh cache: a cold render of the whole script (the
baseline), the edited render, then the same script again with everything cached. Targets (full
mode): the edited render synthesises exactly one segment in <= 5 s; the cached one synthesises
nothing and wakes nothing.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import local_prefect_server, median, use_dirs, verdict, write_script

COUNTING_ENGINE = "bench-counting-dev"
TARGET_EDITED_SECONDS = 5.0


@dataclass
class Counts:
    loads: int = 0
    segments: int = 0


COUNTS = Counts()


class CountingEngine:
    """The dev engine, counting what it synthesises."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.modes, self.model_id, self.revision = inner.modes, inner.model_id, inner.revision

    def synthesize(self, voice: object, segments: list[Any], generation: Any) -> list[Any]:
        COUNTS.segments += len(segments)
        return list(self.inner.synthesize(voice, segments, generation))

    def close(self) -> None:
        self.inner.close()


def register_counting_engine() -> None:
    from model_server.config import ENGINE_MODES
    from model_server.inference import ENGINE_FACTORIES

    dev = ENGINE_FACTORIES["dev"]

    def factory(config: Any, model_dir: str) -> dict[str, Any]:
        COUNTS.loads += 1
        return {name: CountingEngine(engine) for name, engine in dev(config, model_dir).items()}

    ENGINE_FACTORIES[COUNTING_ENGINE] = factory
    ENGINE_MODES[COUNTING_ENGINE] = ENGINE_MODES["dev"]
    os.environ["NARRATE_ENGINES"] = COUNTING_ENGINE


@dataclass(frozen=True)
class Render:
    seconds: float
    syntheses: int
    wakes: int


@dataclass(frozen=True)
class RunResult:
    cold: Render
    edited: Render
    cached: Render


def _render(script: Path, out: Path) -> Render:
    from flows.render_narration import render_narration

    before = Counts(COUNTS.loads, COUNTS.segments)
    started = time.perf_counter()
    render_narration(script=str(script), out_dir=str(out), backend="inprocess")
    seconds = time.perf_counter() - started
    return Render(seconds, COUNTS.segments - before.segments, COUNTS.loads - before.loads)


def one_run(work: Path, segments: int, run: int) -> RunResult:
    use_dirs(work, f"cache-{run}")
    script = work / f"run-{run}" / "script.yaml"
    out = work / f"run-{run}" / "out"
    cold = _render(write_script(script, segments), out)
    edited = _render(write_script(script, segments, edit=(7 * run + 3) % segments), out)
    cached = _render(script, out)
    return RunResult(cold, edited, cached)


def main(smoke: bool = False, runs: int | None = None, segments: int | None = None) -> int:
    segments = segments or (10 if smoke else 100)
    runs = runs or (1 if smoke else 3)
    from prefect import flow

    from narrate.cli.prefect_server import prepare_prefect_environment

    prepare_prefect_environment()
    register_counting_engine()

    @flow(name="bench-warm-up")
    def warm_up() -> None:
        """Connects to the Prefect server before anything is timed."""

    with local_prefect_server(), tempfile.TemporaryDirectory() as scratch:
        warm_up()
        results = [one_run(Path(scratch), segments, run) for run in range(runs)]
    cold = median([r.cold.seconds for r in results])
    edited = median([r.edited.seconds for r in results])
    cached = median([r.cached.seconds for r in results])
    one_synthesis = all(r.edited.syntheses == 1 for r in results)
    nothing_cached = all(r.cached.syntheses == 0 and r.cached.wakes == 0 for r in results)
    time_met = edited <= TARGET_EDITED_SECONDS
    print(f"incremental re-render, {segments} segments, dev voice, backend inprocess, local Prefect "
          f"server, {runs} run(s) (medians):")  # fmt: skip
    print(f"  cold render (baseline, all synthesised)   {cold:7.2f} s")
    print(f"  one segment edited                        {edited:7.2f} s   ratio to cold {edited / cold:.3f}"
          f"   target <= {TARGET_EDITED_SECONDS:g} s: {verdict(time_met)}")  # fmt: skip
    print(f"  all cached                                {cached:7.2f} s   ratio to cold {cached / cold:.3f}")
    print(f"  syntheses when edited: {[r.edited.syntheses for r in results]} (target 1: "
          f"{verdict(one_synthesis)}); wakes when edited: {[r.edited.wakes for r in results]}")  # fmt: skip
    print(f"  all cached: syntheses {[r.cached.syntheses for r in results]}, wakes "
          f"{[r.cached.wakes for r in results]} (target 0 and 0: {verdict(nothing_cached)})")  # fmt: skip
    for index, r in enumerate(results):
        print(f"  run {index}: cold {r.cold.seconds:.2f} s ({r.cold.syntheses} syntheses), edited "
              f"{r.edited.seconds:.2f} s, cached {r.cached.seconds:.2f} s")  # fmt: skip
    if smoke:
        print("  smoke mode: small sizes, targets reported but not asserted")
        return 0 if one_synthesis and nothing_cached else 1
    return 0 if time_met and one_synthesis and nothing_cached else 1
