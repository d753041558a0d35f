"""Part 3 of the critical-path benchmark (:mod:`bench.critical_path`): one render fanned out over at
most 1, 2 and 4 emulated instances, sized by narrate itself."""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from bench.common import use_dirs, write_script
from bench.emulated_endpoint import InstanceWatcher, wait_for_zero

if TYPE_CHECKING:
    from narrate.aws.local import AsyncEndpointEmulator

FAN_OUT_INSTANCES = (1, 2, 4)
FAN_OUT_SEGMENTS = 1000
FAN_OUT_COLD_START_SECONDS = 2.0
# A request of 8 segments (about 34 s of speech), two at a time on an instance that makes 25 s of speech
# a second (the 1.7B clone on an H100, model-server): 2.7 s each.
FAN_OUT_INVOCATION_SECONDS = 2.7
FAN_OUT_BATCH_SIZE = 8  # NARRATE_BATCH_SIZE's default


@dataclass(frozen=True)
class FanOutResult:
    """One fan-out render, in seconds."""

    most: int  # NARRATE_MAX_INSTANCES
    asked: int  # instances its wake asked for (its sizing)
    used: int  # instances that took requests
    synthesis: float  # first instance in service -> last output
    gpu_seconds: float
    release_delay: float
    staging: float  # the render's upload of its requests, while the instances start
    request: float  # mean time a request held a slot (the accelerator time + the handler's own work)


@dataclass(frozen=True)
class FanOutScale:
    """The emulated instance of part 3."""

    segments: int
    cold_start: float
    invocation: float
    concurrency: int

    def throughput(self, script: Path) -> float:
        """Seconds of speech an emulated instance makes a second: a request's speech over its
        accelerator time, times the requests it takes at once."""
        from narrate.check.gate import expected_seconds

        texts = [s["text"] for s in yaml.safe_load(script.read_text())["segments"]]
        requests = -(-len(texts) // FAN_OUT_BATCH_SIZE)
        return sum(map(expected_seconds, texts)) / (requests * self.invocation / self.concurrency)


def fan_out_way(
    script: Path, work: Path, tag: str, emulator: AsyncEndpointEmulator, most: int, throughput: float
) -> FanOutResult:
    """One render from zero with at most ``most`` instances; narrate sizes the fan-out itself."""
    from flows.render_narration import render_narration
    from narrate.manifest import RenderManifest
    from narrate.settings import get_settings

    os.environ.update(
        NARRATE_MAX_INSTANCES=str(most),
        NARRATE_INSTANCE_THROUGHPUT=f"{throughput:.6g}",
        NARRATE_COLD_START_SECONDS=f"{emulator.options.cold_start_seconds:g}",
        NARRATE_BATCH_SIZE=str(FAN_OUT_BATCH_SIZE),
    )
    use_dirs(work, f"cache-fan-{tag}")
    name = get_settings().endpoint_name
    wait_for_zero(name)
    served = {key: count for key, count in emulator.served_by.items() if key[0] == name}
    gpu_before, serving_before = emulator.instance_seconds(name), emulator.serving_seconds[name]
    with InstanceWatcher(name) as watcher:
        render_narration(script=str(script), out_dir=str(work / f"fan-{tag}"))
    manifest = RenderManifest.load(work / f"fan-{tag}" / "manifest.json")
    last, up, down = manifest.last_output_at, watcher.up_at, watcher.down_at
    if last is None or up is None or down is None:
        raise RuntimeError("no last output, no instance came up, or it was not released")
    gpu = emulator.instance_seconds(name) - gpu_before
    taken = {key: count - served.get(key, 0) for key, count in emulator.served_by.items() if key[0] == name}
    used = sum(1 for count in taken.values() if count > 0)
    request = (emulator.serving_seconds[name] - serving_before) / max(1, sum(taken.values()))
    staging = manifest.stage_seconds.get("stage requests", 0.0)
    return FanOutResult(most, manifest.instances or 1, used, last - up, gpu, down - last, staging, request)


def fan_out_runs(
    work: Path, emulator: AsyncEndpointEmulator, scale: FanOutScale, runs: int
) -> tuple[list[FanOutResult], float]:
    """Every run renders on 1, 2 and 4 instances at most, one after another, in this process; with the
    emulated instance's throughput."""
    from narrate.endpoints import get_endpoint
    from narrate.settings import get_settings

    emulator.set_cold_start_seconds(scale.cold_start)
    emulator.set_invocation_seconds(scale.invocation)
    endpoint = get_endpoint("sagemaker", get_settings())
    endpoint.ensure("bench-fan-out")  # made (one instance, as SageMaker makes it) and released before
    endpoint.scale_down("bench-fan-out")
    script = write_script(work / "fan-out.yaml", scale.segments)
    throughput = scale.throughput(script)
    results = [
        fan_out_way(script, work, f"{run}-{most}", emulator, most, throughput)
        for run in range(runs)
        for most in FAN_OUT_INSTANCES
    ]
    return results, throughput


def report_fan_out(results: Sequence[FanOutResult], scale: FanOutScale, throughput: float) -> bool:
    """Part 3's table (medians per most instances); True when every target is met."""
    by_most = {m: [r for r in results if r.most == m] for m in FAN_OUT_INSTANCES}
    one = by_most[1]
    one_synthesis = statistics.median(r.synthesis for r in one)
    one_gpu = statistics.median(r.gpu_seconds for r in one)
    requests = -(-scale.segments // FAN_OUT_BATCH_SIZE)
    print(f"\n3. fan-out: {scale.segments} segments ({requests} requests of up to {FAN_OUT_BATCH_SIZE}), "
          f"cold start {scale.cold_start:g} s, {scale.invocation:g} s accelerator time a request, "
          f"{scale.concurrency} at once an instance (throughput {throughput:.1f} s of speech a second); "
          f"{len(one)} run(s), medians:")  # fmt: skip
    print("| most instances | asked for | used | synthesis s | speed-up | of ideal | GPU-seconds | vs 1 "
          "| released after last output s | a request's slot s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    met = True
    for most, rows in by_most.items():
        synthesis = statistics.median(r.synthesis for r in rows)
        gpu = statistics.median(r.gpu_seconds for r in rows)
        release = statistics.median(r.release_delay for r in rows)
        asked, used = statistics.median(r.asked for r in rows), statistics.median(r.used for r in rows)
        request = statistics.median(r.request for r in rows)
        speed_up = one_synthesis / synthesis
        print(f"| {most} | {asked:g} | {used:g} | {synthesis:.2f} | {speed_up:.2f}x | {speed_up / most:.2f} "
              f"| {gpu:.2f} | {gpu / one_gpu:.3f} | {release:.2f} | {request:.3f} |")  # fmt: skip
        met = met and asked == most and speed_up >= 0.8 * most and gpu <= 1.1 * one_gpu and release <= 5
    for r in results:
        print(f"  at most {r.most}: asked {r.asked}, used {r.used}, synthesis {r.synthesis:.2f} s, "
              f"GPU-s {r.gpu_seconds:.2f}, release {r.release_delay:.2f} s, "
              f"requests staged in {r.staging:.2f} s, a request held its slot {r.request:.3f} s")  # fmt: skip
    print(
        "  targets: speed-up >= 0.8 x ideal, GPU-seconds <= 1.1 x one instance's, release <= 5 s: "
        + ("met" if met else "MISSED")
    )
    return met
