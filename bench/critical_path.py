"""Critical path of a render on the embedded AWS: against the ideal, and against the reference pattern.

An endpoint sits at zero instances; a simulated cold start (20 s) and a fixed accelerator time per
request (2 s) stand in for the GPU. The engine is the bench-only instant engine, so a request costs
exactly that fixed time. Two parts, in one process and one embedded AWS:

1. Targets, at full scale: narrate's cold render (wake, synthesise, release) against the ideal, the
   cold start plus the synthesis time, where the synthesis time is the same render's time against an
   endpoint already awake (warm baseline), measured in the same run. Targets: cold critical path
   <= 1.05 x (cold start + warm synthesis); instance released <= 5 s after the last output.
2. Comparison, every way in the same run at one scale ``--scale`` s: the warm baseline, narrate's
   cold render and the reference pattern (:mod:`bench.reference_pattern`: one request per segment,
   sequential, S3 polled every 10 s, woken only by the backlog alarm, released only by target
   tracking's scale-in after its cooldown). Cold start, accelerator time, the emulator's
   ``time_scale`` (alarm periods, cooldowns) and the reference's polling interval are all multiplied
   by s; narrate's own knobs are not. Every figure is reported divided by s ("at full scale").

3. Fan-out, in the same run: one 1,000-segment render on at most 1, 2 and 4 instances
   (``NARRATE_MAX_INSTANCES``), sized by narrate itself from the script's expected speech, the emulated
   instance's throughput (the speech of a request over its accelerator time, with the requests an
   instance takes at once) and the cold start. Emulated times are chosen so that the work is worth four
   instances by narrate's own rule (each gets at least ten cold starts of it): an instance as fast as
   the H100 measured (25 s of speech a second: 2.7 s per request of 8 segments, two at once), a 2 s
   cold start (scaled down from minutes, so that the run takes minutes). Per render: the synthesis
   time, from the first instance in service to the last output; GPU-seconds (every instance, launch
   to release); release after the last output. Targets: synthesis speed-up >= 0.8 x the ideal (N x the
   one-instance render's), GPU-seconds within 10 % of the one-instance render's, every instance
   released <= 5 s after the last output.

Per way: wall time from the start to the last output, wall time to the instance's release, and
GPU-seconds: the emulator's instance time, each instance from its launch to its release. The warm
baseline's instance is woken by the benchmark before the start and handed over to the render, which
releases it as a cold render does; its GPU-seconds run from the render's start.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import register_instant_engine, use_dirs, write_script
from bench.emulated_endpoint import InstanceWatcher, wait_for_zero
from bench.fan_out import (
    FAN_OUT_COLD_START_SECONDS,
    FAN_OUT_INVOCATION_SECONDS,
    FAN_OUT_SEGMENTS,
    FanOutScale,
    fan_out_runs,
    report_fan_out,
)
from bench.reference_pattern import POLL_SECONDS, TIMEOUT_SECONDS, ReferenceClient, load_segments
from bench.reference_pattern import synthesize_sequentially as reference_synthesize

if TYPE_CHECKING:
    from narrate.aws.local import AsyncEndpointEmulator

COLD_START_SECONDS = 20.0
INVOCATION_SECONDS = 2.0  # accelerator time of one request, whatever its number of segments
SCALE_IN_COOLDOWN_SECONDS = 300.0  # narrate's registered target tracking (sagemaker_setup)
ALARM_SECONDS = 120.0  # HasBacklogWithoutCapacity: two 60 s periods


@dataclass(frozen=True)
class WayResult:
    """One way of voicing the script, in seconds from its start."""

    last_output: float
    released: float
    gpu_seconds: float

    @property
    def release_delay(self) -> float:
        return self.released - self.last_output

    def at_full_scale(self, scale: float) -> WayResult:
        return WayResult(self.last_output / scale, self.released / scale, self.gpu_seconds / scale)


@dataclass(frozen=True)
class NarrateRun:
    warm: WayResult
    cold: WayResult


@dataclass(frozen=True)
class ComparisonRun(NarrateRun):
    reference: WayResult


@contextmanager
def handed_over(endpoint: Any, holder: str) -> Iterator[None]:
    """The benchmark's hold on a woken endpoint, dropped as soon as the render holds it too, so the
    render's own scale-down releases the instance (dropped at the end if the render never held it)."""
    done = threading.Event()

    def hand_over() -> None:
        while not done.is_set():
            if endpoint.status().get("renders_holding_it", 0) >= 2:
                break
            time.sleep(0.05)
        endpoint.scale_down(holder)

    thread = threading.Thread(target=hand_over, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _way(started: float, last_output_at: float | None, watcher: InstanceWatcher, gpu: float) -> WayResult:
    if last_output_at is None or watcher.down_at is None:
        raise RuntimeError("no last output, or the instance was not released")
    return WayResult(last_output_at - started, watcher.down_at - started, gpu)


def narrate_ways(script: Path, work: Path, tag: str, emulator: AsyncEndpointEmulator) -> NarrateRun:
    """The render against an endpoint already awake (baseline), then woken from zero."""
    from flows.render_narration import render_narration
    from narrate.endpoints import get_endpoint
    from narrate.manifest import RenderManifest
    from narrate.settings import get_settings

    name = get_settings().endpoint_name
    use_dirs(work, f"cache-warm-{tag}")
    endpoint = get_endpoint("sagemaker", get_settings())
    endpoint.ensure("bench-warm")
    endpoint.wake(600, "bench-warm")  # the baseline: an instance already up
    with InstanceWatcher(name) as watcher, handed_over(endpoint, "bench-warm"):
        gpu_before = emulator.instance_seconds(name)
        started = time.time()
        render_narration(script=str(script), out_dir=str(work / f"warm-{tag}"))
    manifest = RenderManifest.load(work / f"warm-{tag}" / "manifest.json")
    warm = _way(started, manifest.last_output_at, watcher, emulator.instance_seconds(name) - gpu_before)
    wait_for_zero(name)

    use_dirs(work, f"cache-cold-{tag}")
    gpu_before = emulator.instance_seconds(name)
    with InstanceWatcher(name) as watcher:
        started = time.time()
        render_narration(script=str(script), out_dir=str(work / f"cold-{tag}"))
    manifest = RenderManifest.load(work / f"cold-{tag}" / "manifest.json")
    cold = _way(started, manifest.last_output_at, watcher, emulator.instance_seconds(name) - gpu_before)
    return NarrateRun(warm, cold)


def reference_way(
    script: Path, work: Path, tag: str, emulator: AsyncEndpointEmulator, scale: float
) -> WayResult:
    """The reference pattern on the same endpoint, from zero, until target tracking releases it."""
    import boto3

    from narrate.settings import get_settings

    settings = get_settings()
    name = settings.endpoint_name
    wait_for_zero(name)
    client = ReferenceClient(
        endpoint_name=name,
        bucket=settings.bucket,
        prefix=f"{settings.s3_prefix}/reference-{tag}",
        s3=boto3.client("s3"),
        runtime=boto3.client("sagemaker-runtime"),
        poll_seconds=POLL_SECONDS * scale,
        timeout_seconds=TIMEOUT_SECONDS * scale,
    )
    gpu_before = emulator.instance_seconds(name)
    release_timeout = 2 * (SCALE_IN_COOLDOWN_SECONDS + ALARM_SECONDS) * scale + 30
    with InstanceWatcher(name, release_timeout) as watcher:
        started = time.time()
        reference_synthesize(client, load_segments(script), work / f"reference-{tag}")
        last_output_at = time.time()
    return _way(started, last_output_at, watcher, emulator.instance_seconds(name) - gpu_before)


def compare_ways(
    script: Path, work: Path, tag: str, emulator: AsyncEndpointEmulator, scale: float
) -> ComparisonRun:
    narrate = narrate_ways(script, work, tag, emulator)
    reference = reference_way(script, work, tag, emulator, scale)
    return ComparisonRun(
        narrate.warm.at_full_scale(scale), narrate.cold.at_full_scale(scale), reference.at_full_scale(scale)
    )


def median_way(ways: Sequence[WayResult]) -> WayResult:
    return WayResult(
        statistics.median(w.last_output for w in ways),
        statistics.median(w.released for w in ways),
        statistics.median(w.gpu_seconds for w in ways),
    )


def report_targets(runs: Sequence[NarrateRun], cold_start: float, invocation: float, segments: int) -> bool:
    """Part 1's table; True when both targets are met."""
    warm = median_way([r.warm for r in runs])
    cold = median_way([r.cold for r in runs])
    release = statistics.median(r.cold.release_delay for r in runs)
    ideal = cold_start + warm.last_output
    ratio = cold.last_output / ideal
    print(f"1. targets: critical path, {segments} segments, {len(runs)} run(s), cold start {cold_start:g} s, "
          f"{invocation:g} s accelerator time per request, full scale (medians):")  # fmt: skip
    print(f"  warm render (synthesis baseline, same run) {warm.last_output:8.2f} s")
    print(f"  cold render (wake from zero)               {cold.last_output:8.2f} s")
    print(f"  ideal: cold start + synthesis              {ideal:8.2f} s")
    print(f"  ratio cold / ideal                         {ratio:8.3f}   target <= 1.05")
    print(f"  instance released after last output       {release:8.2f} s   target <= 5")
    print(f"  GPU-seconds: warm {warm.gpu_seconds:.2f}, cold {cold.gpu_seconds:.2f}")
    for index, r in enumerate(runs):
        print(f"  run {index}: warm {r.warm.last_output:.2f} s, cold {r.cold.last_output:.2f} s, "
              f"release {r.cold.release_delay:.2f} s, GPU-s cold {r.cold.gpu_seconds:.2f}")  # fmt: skip
    return ratio <= 1.05 and release <= 5


def report_comparison(runs: Sequence[ComparisonRun], scale: float, segments: int) -> None:
    """Part 2's table, every figure already divided by the scale."""
    warm = median_way([r.warm for r in runs])
    cold = median_way([r.cold for r in runs])
    reference = median_way([r.reference for r in runs])
    print(f"\n2. comparison: {segments} segments, {len(runs)} run(s), all ways in the same run at scale "
          f"{scale:g}; figures AT FULL SCALE (measured / {scale:g}), medians:")  # fmt: skip
    print(f"  cold start {COLD_START_SECONDS:g} s, {INVOCATION_SECONDS:g} s accelerator time per request, "
          f"alarm {ALARM_SECONDS:g} s, scale-in cooldown {SCALE_IN_COOLDOWN_SECONDS:g} s, "
          f"reference polling {POLL_SECONDS:g} s")  # fmt: skip
    print(f"  {'way':44} {'last output':>12} {'released':>10} {'GPU-seconds':>12}")
    rows = [
        ("warm baseline (instance already up)", warm),
        ("narrate, cold (wake from zero)", cold),
        ("reference (1 request/segment, 10 s polling)", reference),
    ]
    for label, way in rows:
        print(f"  {label:44} {way.last_output:10.1f} s {way.released:8.1f} s {way.gpu_seconds:10.1f} s")
    ratios = (
        cold.last_output / reference.last_output,
        cold.released / reference.released,
        cold.gpu_seconds / reference.gpu_seconds,
    )
    print(f"  {'narrate cold / reference':44} {ratios[0]:12.3f} {ratios[1]:10.3f} {ratios[2]:12.3f}")
    ideal = COLD_START_SECONDS + warm.last_output
    print(f"  at this scale: narrate cold / ideal {cold.last_output / ideal:.3f}, released "
          f"{cold.release_delay:.2f} s after its last output (narrate's own unscaled overheads count "
          f"x{1 / scale:g} here)")  # fmt: skip
    for index, r in enumerate(runs):
        print(f"  run {index}: " + ", ".join(
            f"{label} {w.last_output:.1f} / {w.released:.1f} / {w.gpu_seconds:.1f} s"
            for label, w in (("warm", r.warm), ("cold", r.cold), ("reference", r.reference))
        ))  # fmt: skip


def main(
    smoke: bool = False,
    runs: int | None = None,
    scale: float | None = None,
    segments: int | None = None,
    parts: Sequence[int] = (1, 2, 3),
) -> int:
    cold_start = 2.0 if smoke else COLD_START_SECONDS
    invocation = 0.2 if smoke else INVOCATION_SECONDS
    target_segments = 10 if smoke else 50
    scale = scale or (0.01 if smoke else 0.1)
    segments = segments or (3 if smoke else 20)
    runs = runs or (1 if smoke else 3)
    fan_out = FanOutScale(
        segments=96 if smoke else FAN_OUT_SEGMENTS,
        cold_start=0.02 if smoke else FAN_OUT_COLD_START_SECONDS,
        invocation=0.2 if smoke else FAN_OUT_INVOCATION_SECONDS,
        concurrency=2,  # NARRATE_MAX_CONCURRENT_INVOCATIONS's default
    )
    from narrate.cli.prefect_server import prepare_prefect_environment

    prepare_prefect_environment()
    register_instant_engine()  # a request costs exactly the simulated accelerator time
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        os.environ.update(
            NARRATE_STATE_DIR=str(work / "state"),
            NARRATE_ENDPOINT_NAME="narrate-bench",
            NARRATE_BUCKET="narrate-bench",
        )
        from prefect import flow

        from narrate.aws.local import EmulatorOptions, local_aws

        @flow(name="bench-warm-up")
        def warm_up() -> None:
            """Starts Prefect's temporary server before anything is timed."""

        warm_up()
        options = EmulatorOptions(
            cold_start_seconds=cold_start, invocation_seconds=invocation, time_scale=scale
        )  # time_scale does not touch part 1: narrate wakes and releases the endpoint itself
        with local_aws(options) as aws:
            emulator = aws.emulator
            assert emulator is not None
            targets, comparisons, fanned = [], [], []
            if 1 in parts:
                script = write_script(work / "targets.yaml", target_segments)
                targets = [narrate_ways(script, work, f"t{run}", emulator) for run in range(runs)]
            if 2 in parts:
                emulator.set_cold_start_seconds(COLD_START_SECONDS * scale)
                emulator.set_invocation_seconds(INVOCATION_SECONDS * scale)
                script = write_script(work / "compare.yaml", segments)
                comparisons = [compare_ways(script, work, f"c{run}", emulator, scale) for run in range(runs)]
            if 3 in parts:
                fanned, throughput = fan_out_runs(work, emulator, fan_out, runs)
    met = True
    if targets:
        met = report_targets(targets, cold_start, invocation, target_segments)
    if comparisons:
        report_comparison(comparisons, scale, segments)
    if fanned:
        met = report_fan_out(fanned, fan_out, throughput) and met
    return 0 if smoke or met else 1
