"""What the terminal shows while a render runs and when it ends: a progress bar per segment (or per
voice) fed by the manifests the flow rewrites, and where the outputs are."""

from __future__ import annotations

import threading
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from narrate.manifest import RenderManifest, RenderState, SegmentRecord, SegmentStatus
from narrate.outputs import RenderFolder

console = Console(stderr=True)
PER_SEGMENT_BARS_UP_TO = 30


def print_result(result: dict[str, object]) -> None:
    outputs = result["outputs"]
    assert isinstance(outputs, dict)
    folder = RenderFolder(Path(outputs["timeline"]).parent)
    timeline, manifest = folder.timeline(), folder.manifest()
    loudness = timeline.loudness
    console.print(
        f"[bold green]done[/]: {len(timeline.segments)} segments, {timeline.total_seconds:.2f} s, "
        f"{result['cached']} cached, {result['synthesised']} synthesised; "
        f"{loudness.output_lufs} LUFS, true peak {loudness.true_peak_dbtp} dBTP",
        soft_wrap=True,
    )
    stages = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in manifest.stage_seconds.items())
    console.print(f"  stages: {stages}", soft_wrap=True, highlight=False)
    console.print(
        f"  GPU: {manifest.gpu_seconds:.1f} GPU-seconds held, {manifest.cost_text()}",
        soft_wrap=True,
        highlight=False,
    )
    if manifest.emulated:
        console.print(f"  [bold yellow]emulated[/]: {manifest.emulated} (not the real voice)", soft_wrap=True)
    for kind, path in outputs.items():
        console.print(f"  {kind:<9} {path}", soft_wrap=True, highlight=False)


class ManifestProgress:
    """Progress bars fed by the render manifests the flow rewrites as segments finish: a bar per segment
    for one short render, else one bar per manifest (per voice)."""

    def __init__(self, manifest_path: Path | dict[str, Path], segment_ids: list[str]) -> None:
        self.paths = manifest_path if isinstance(manifest_path, dict) else {"segments": manifest_path}
        self.ids = segment_ids
        self.per_segment = len(self.paths) == 1 and len(segment_ids) <= PER_SEGMENT_BARS_UP_TO
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(), console=console, transient=False,
        )  # fmt: skip
        self.stop = threading.Event()
        self.rows: dict[str, TaskID] = {}
        self.started_after = {
            name: p.stat().st_mtime if p.exists() else 0.0 for name, p in self.paths.items()
        }

    def __enter__(self) -> ManifestProgress:
        if self.per_segment:
            for segment_id in self.ids:
                self.rows[segment_id] = self.progress.add_task(segment_id, total=1, status="waiting")
        else:
            for name in self.paths:
                self.rows[name] = self.progress.add_task(name, total=len(self.ids), status="waiting")
        self.progress.start()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self._update()
        self.progress.stop()

    def _poll(self) -> None:
        while not self.stop.wait(0.2):
            self._update()

    def _update(self) -> None:
        for name, path in self.paths.items():
            self._update_one(name, path)

    def _update_one(self, name: str, path: Path) -> None:
        try:
            if path.stat().st_mtime <= self.started_after[name]:
                return
            manifest = RenderManifest.load(path)
        except (OSError, ValueError):
            return  # not written yet (or from an earlier render): keep the last view
        finished = 0
        for record in manifest.segments:
            done = record.status in {SegmentStatus.DONE, SegmentStatus.FAILED}
            finished += done
            if self.per_segment and record.id in self.rows:
                self.progress.update(self.rows[record.id], completed=int(done), status=segment_label(record))
        if not self.per_segment:
            running = manifest.state is RenderState.RUNNING
            stage = " (re-timing the video)" if running and manifest.outputs else ""
            status = f"{finished}/{len(self.ids)} {manifest.state.value}{stage}"
            self.progress.update(self.rows[name], completed=finished, status=status)


def segment_label(record: SegmentRecord) -> str:
    if record.status is SegmentStatus.FAILED:
        return f"[red]failed: {(record.error or '')[:60]}[/]"
    kept = record.kept
    if record.status is SegmentStatus.DONE:
        label = "cached" if record.cache_hit else "synthesised"
        if kept is not None and kept.take > 1:
            label += f", take {kept.take}"
        return label + (" [yellow](best of failed takes)[/]" if kept is not None and not kept.passed else "")
    failed_takes = sum(1 for t in record.takes if not t.passed)
    if failed_takes:
        return f"[yellow]re-rolled[/]: take {failed_takes + 1} ({record.takes[-1].summary[:50]})"
    return f"retrying ({record.attempts} attempt(s))" if record.attempts else record.status.value
