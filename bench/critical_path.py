"""Critical path of a render on the embedded AWS, against the ideal: cold start + synthesis.

An endpoint sits at zero instances. The render must wake it, synthesise every segment and release
the instance. Ideal: the simulated cold start plus the synthesis time, where the synthesis time is
measured in the same run by the same render against an endpoint that is already awake (baseline).
Targets: cold critical path <= 1.05 x (cold start + warm synthesis); instance released <= 5 s after
the last output.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

SENTENCES = [
    "Open the dashboard and pick a data source.",
    "The chart updates as soon as you drag a field onto it.",
    "Filters apply to every widget on the page at once.",
    "Share a live link with your team in one click.",
    "Alerts tell you when a number moves more than you expect.",
]


@dataclass
class RunResult:
    warm_seconds: float
    cold_seconds: float
    release_delay_seconds: float


def write_script(folder: Path, segments: int) -> Path:
    data = {
        "title": "Critical path benchmark",
        "voice": {"engine": "dev", "language": "en"},
        "output": {"formats": ["wav"]},
        "segments": [
            {"id": f"s{i:03d}", "text": f"Step {i}. {SENTENCES[i % len(SENTENCES)]}"} for i in range(segments)
        ],
    }
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


class InstanceWatcher:
    """Polls the endpoint and notes when its instance comes up and when it goes away again."""

    def __init__(self, endpoint_name: str) -> None:
        import boto3

        self.client = boto3.client("sagemaker")
        self.name = endpoint_name
        self.up_at: float | None = None
        self.down_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> InstanceWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        deadline = time.monotonic() + 30
        while self.down_at is None and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            variant = self.client.describe_endpoint(EndpointName=self.name)["ProductionVariants"][0]
            count = variant.get("CurrentInstanceCount") or 0
            now = time.time()
            if count >= 1 and self.up_at is None:
                self.up_at = now
            if count == 0 and self.up_at is not None and self.down_at is None:
                self.down_at = now
            time.sleep(0.05)


def _use_cache(folder: Path) -> None:
    from narrate.endpoints import reset_endpoints
    from narrate.settings import get_settings

    os.environ["NARRATE_CACHE_DIR"] = str(folder)
    get_settings.cache_clear()
    reset_endpoints()


def _wait_for_zero(endpoint_name: str) -> None:
    import boto3

    client = boto3.client("sagemaker")
    for _ in range(600):
        variant = client.describe_endpoint(EndpointName=endpoint_name)["ProductionVariants"][0]
        if not variant.get("CurrentInstanceCount"):
            return
        time.sleep(0.05)
    raise RuntimeError("the endpoint did not go back to zero")


def one_run(script: Path, work: Path, run: int) -> RunResult:
    from flows.render_narration import render_narration
    from narrate.endpoints import get_endpoint
    from narrate.manifest import RenderManifest
    from narrate.settings import get_settings

    name = get_settings().endpoint_name
    _use_cache(work / f"cache-warm-{run}")
    endpoint = get_endpoint("sagemaker")
    endpoint.ensure("bench-warm")
    endpoint.wake(600, "bench-warm")  # the baseline: an instance already up and held
    started = time.time()
    render_narration(script=str(script), out_dir=str(work / f"warm-{run}"))
    warm = RenderManifest.load(work / f"warm-{run}" / "manifest.json")
    endpoint.scale_down("bench-warm")
    _wait_for_zero(name)

    _use_cache(work / f"cache-cold-{run}")
    with InstanceWatcher(name) as watcher:
        started_cold = time.time()
        render_narration(script=str(script), out_dir=str(work / f"cold-{run}"))
        cold = RenderManifest.load(work / f"cold-{run}" / "manifest.json")
    assert warm.last_output_at and cold.last_output_at and watcher.down_at
    return RunResult(
        warm_seconds=warm.last_output_at - started,
        cold_seconds=cold.last_output_at - started_cold,
        release_delay_seconds=watcher.down_at - cold.last_output_at,
    )


def main(smoke: bool = False, runs: int | None = None) -> int:
    cold_start = 2.0 if smoke else 20.0
    invocation = 0.2 if smoke else 2.0
    segments = 10 if smoke else 50
    runs = runs or (1 if smoke else 3)
    from narrate.cli import prepare_prefect_environment

    prepare_prefect_environment()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        os.environ.update(
            NARRATE_STATE_DIR=str(work / "state"),
            NARRATE_ENDPOINT_NAME="narrate-bench",
            NARRATE_BUCKET="narrate-bench",
        )
        from prefect import flow

        from narrate.localaws import EmulatorOptions, local_aws

        @flow(name="bench-warm-up")
        def warm_up() -> None:
            """Starts Prefect's temporary server before anything is timed."""

        warm_up()
        options = EmulatorOptions(cold_start_seconds=cold_start, invocation_seconds=invocation)
        with local_aws(options):
            script = write_script(work, segments)
            results = [one_run(script, work, run) for run in range(runs)]
    warm = statistics.median(r.warm_seconds for r in results)
    cold = statistics.median(r.cold_seconds for r in results)
    release = statistics.median(r.release_delay_seconds for r in results)
    ideal = cold_start + warm
    ratio = cold / ideal
    print(f"critical path, {segments} segments, {runs} run(s), cold start {cold_start:g} s, "
          f"{invocation:g} s accelerator time per request (medians):")  # fmt: skip
    print(f"  warm render (synthesis baseline, same run) {warm:8.2f} s")
    print(f"  cold render (wake from zero)               {cold:8.2f} s")
    print(f"  ideal: cold start + synthesis              {ideal:8.2f} s")
    print(f"  ratio cold / ideal                         {ratio:8.3f}   target <= 1.05")
    print(f"  instance released after last output       {release:8.2f} s   target <= 5")
    for index, r in enumerate(results):
        print(f"  run {index}: warm {r.warm_seconds:.2f} s, cold {r.cold_seconds:.2f} s, "
              f"release {r.release_delay_seconds:.2f} s")  # fmt: skip
    if smoke:
        return 0
    return 0 if ratio <= 1.05 and release <= 5 else 1
