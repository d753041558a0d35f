"""Orchestration overhead per segment: the real render flow with an instant engine, so only the
pipeline is timed, against a direct in-process loop over the same handler without Prefect.

Each (size, way) runs in its own child process (peak RSS from ``/usr/bin/time -v``) against one
running local Prefect server. The flow way calls ``render_narration`` with backend ``inprocess``
(the container handler in the flow's process: no embedded AWS); the direct way does the same work
(plan, batch requests through ``input_fn -> predict_fn -> output_fn``, parse, validate, cache,
assemble) in a plain loop; the flow runs again with the quality gate off, and the difference is the
gate's cost per segment (its measures of each clip, the verdict, the records). Targets (full mode):
the flow's wall time per segment <= 20 ms at 1,000 segments, and peak memory growing no faster than
the audio (RSS growth per segment within a constant multiple of the track's bytes per segment from
100 to 1,000 segments).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    local_prefect_server,
    median,
    peak_rss_mb,
    register_instant_engine,
    run_child,
    use_dirs,
    verdict,
    write_script,
)

CLIP_SECONDS = 0.25
TRACK_RATE = 24000
TARGET_MS_PER_SEGMENT = 20.0
MEMORY_SLOPE_TOLERANCE = 1.5  # RSS per segment at 1,000 may exceed that at 100 by this factor (noise)


@dataclass(frozen=True)
class SizeResult:
    segments: int
    flow_seconds: list[float]
    direct_seconds: list[float]
    ungated_seconds: list[float]  # the flow with the quality gate off (NARRATE_GATE_CHECKS=none)
    flow_rss_mb: float
    direct_rss_mb: float
    flow_base_rss_mb: float

    @property
    def flow_ms_per_segment(self) -> float:
        return 1000 * median(self.flow_seconds) / self.segments

    @property
    def direct_ms_per_segment(self) -> float:
        return 1000 * median(self.direct_seconds) / self.segments

    @property
    def gate_ms_per_segment(self) -> float:
        """What measuring and judging each clip adds: the flow's time with the gate on, minus off."""
        return 1000 * (median(self.flow_seconds) - median(self.ungated_seconds)) / self.segments

    @property
    def ratio(self) -> float:
        return median(self.flow_seconds) / median(self.direct_seconds)


def _flow_runs(segments: int, runs: int, work: Path) -> list[float]:
    from prefect import flow

    from flows.render_narration import render_narration

    @flow(name="bench-warm-up")
    def warm_up() -> None:
        """Connects to the Prefect server before anything is timed."""

    warm_up()
    seconds = []
    for run in range(runs):
        use_dirs(work, f"cache-{run}")
        script = write_script(work / f"run-{run}.yaml", segments)
        started = time.perf_counter()
        result = render_narration(script=str(script), out_dir=str(work / f"out-{run}"), backend="inprocess")
        seconds.append(time.perf_counter() - started)
        assert result["synthesised"] == segments, result
    return seconds


def _direct_runs(segments: int, runs: int, work: Path) -> list[float]:
    from model_server import inference
    from model_server.voices import NATIVE_SAMPLE_RATES
    from narrate.settings import get_settings
    from narrate.synthesis.cache import ClipCache
    from narrate.synthesis.requests import model_identity
    from narrate.synthesis.responses import parse_batch_output
    from tasks.assembly import TrackPlan, assemble_track
    from tasks.script import ScriptOverrides, load_narration, plan_segments
    from tasks.synthesis import plan_jobs, validate_clip

    seconds = []
    for run in range(runs):
        use_dirs(work, f"cache-{run}")
        script = write_script(work / f"run-{run}.yaml", segments)
        started = time.perf_counter()
        settings = get_settings()
        model = inference.load_engines(settings.server_config())
        narration = load_narration.fn(str(script), ScriptOverrides(), settings.max_segment_chars)
        identity = model_identity(narration.voice, settings.server_config(), settings.aws)
        plan = plan_segments(narration, identity)
        cache = ClipCache(settings.cache_dir)
        for job in plan_jobs(narration, identity, plan, settings.batch_size):
            parsed = inference.input_fn(job.body(), "application/json")
            body = inference.output_fn(inference.predict_fn(parsed, model), "application/json")
            outputs = parse_batch_output(body.encode() if isinstance(body, str) else body, job.segment_ids)
            for segment_id, output in outputs.items():
                assert output.wav_bytes is not None, output.error
                validate_clip(output.wav_bytes, NATIVE_SAMPLE_RATES["dev"])  # the gate's cost: flow runs
                cache.put_wav(job.cache_keys[segment_id], output.wav_bytes, {"id": segment_id})
        assemble_track.fn(TrackPlan(narration, plan, identity), settings.cache_dir, work / f"out-{run}")
        seconds.append(time.perf_counter() - started)
    return seconds


def child(way: str, segments: int, runs: int) -> None:
    """One (size, way) in this process; prints its JSON result as the last stdout line."""
    from narrate.cli.prefect_server import prepare_prefect_environment

    prepare_prefect_environment()
    if way == "flow-no-gate":
        os.environ["NARRATE_GATE_CHECKS"] = "none"
    register_instant_engine(CLIP_SECONDS)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        base = peak_rss_mb()
        seconds = (_direct_runs if way == "direct" else _flow_runs)(segments, runs, work)
        print(json.dumps({"seconds": seconds, "base_rss_mb": base, "peak_rss_mb": peak_rss_mb()}))


def measure(segments: int, runs: int) -> SizeResult:
    args = ["--segments", str(segments), "--runs", str(runs)]
    direct = run_child("bench.orchestration", ["--child", "direct", *args])
    flow = run_child("bench.orchestration", ["--child", "flow", *args])
    ungated = run_child("bench.orchestration", ["--child", "flow-no-gate", *args])
    return SizeResult(
        segments=segments,
        flow_seconds=flow.data["seconds"],
        direct_seconds=direct.data["seconds"],
        ungated_seconds=ungated.data["seconds"],
        flow_rss_mb=flow.peak_rss_mb,
        direct_rss_mb=direct.peak_rss_mb,
        flow_base_rss_mb=flow.data["base_rss_mb"],
    )


def audio_mb_per_segment() -> float:
    """The track's own float32 bytes per segment (an upper bound: clips are trimmed)."""
    return CLIP_SECONDS * TRACK_RATE * 4 / 2**20


def main(smoke: bool = False, runs: int | None = None, sizes: list[int] | None = None) -> int:
    sizes = sizes or ([10, 50] if smoke else [10, 100, 1000])
    runs = runs or (1 if smoke else 3)
    with local_prefect_server():
        results = [measure(n, runs) for n in sizes]
    print(f"orchestration overhead, instant engine ({CLIP_SECONDS:g} s clip), backend inprocess, "
          f"local Prefect server, {runs} run(s) each (medians):")  # fmt: skip
    print("  segments | flow s  | flow ms/seg | gate off s | gate ms/seg | direct s | direct ms/seg | "
          "flow/direct | flow peak RSS MB | direct peak RSS MB")  # fmt: skip
    for r in results:
        print(f"  {r.segments:8d} | {median(r.flow_seconds):7.2f} | {r.flow_ms_per_segment:11.1f} | "
              f"{median(r.ungated_seconds):10.2f} | {r.gate_ms_per_segment:11.1f} | "
              f"{median(r.direct_seconds):8.2f} | {r.direct_ms_per_segment:13.1f} | {r.ratio:11.2f} | "
              f"{r.flow_rss_mb:16.0f} | {r.direct_rss_mb:18.0f}")  # fmt: skip
    for r in results:
        print(f"  runs at {r.segments}: flow {', '.join(f'{s:.2f}' for s in r.flow_seconds)} s; "
              f"gate off {', '.join(f'{s:.2f}' for s in r.ungated_seconds)} s; "
              f"direct {', '.join(f'{s:.2f}' for s in r.direct_seconds)} s")  # fmt: skip
    largest = results[-1]
    time_met = largest.flow_ms_per_segment <= TARGET_MS_PER_SEGMENT
    print(f"  flow per segment at {largest.segments}: {largest.flow_ms_per_segment:.1f} ms, "
          f"target <= {TARGET_MS_PER_SEGMENT:g} ms: {verdict(time_met)}")  # fmt: skip
    memory_met = True
    if len(results) >= 3:
        small, big = results[-2], results[-1]
        slope_small = (small.flow_rss_mb - results[0].flow_rss_mb) / (small.segments - results[0].segments)
        slope_big = (big.flow_rss_mb - small.flow_rss_mb) / (big.segments - small.segments)
        audio = audio_mb_per_segment()
        memory_met = slope_big <= max(slope_small, audio) * MEMORY_SLOPE_TOLERANCE
        print(f"  peak RSS per extra segment: {1024 * slope_small:.0f} KB ({results[0].segments}->"
              f"{small.segments}), {1024 * slope_big:.0f} KB ({small.segments}->{big.segments}); "
              f"audio {1024 * audio:.0f} KB/segment: {verdict(memory_met)}")  # fmt: skip
    if smoke:
        print("  smoke mode: small sizes, targets reported but not asserted")
        return 0
    return 0 if time_met and memory_met else 1


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.orchestration")
    parser.add_argument("--child", choices=["flow", "flow-no-gate", "direct"], required=True)
    parser.add_argument("--segments", type=int, required=True)
    parser.add_argument("--runs", type=int, default=1)
    return parser.parse_args()


if __name__ == "__main__":
    options = _parse()
    child(options.child, options.segments, options.runs)
