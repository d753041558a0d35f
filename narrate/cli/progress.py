"""What the terminal shows while a render runs and when it ends: a progress bar per segment (or per
voice) fed by the manifests the flow rewrites, and where the outputs are."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path

from rich.console import Console, RenderableType
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column
from rich.text import Text

from narrate.aws.pricing import HourlyPrice
from narrate.manifest import RenderManifest, RenderState, SegmentRecord, SegmentStatus
from narrate.outputs import REVIEW, RenderFolder

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
        console.print(f"  {kind:<10} {path}", soft_wrap=True, highlight=False)
    if (page := folder.path / REVIEW).is_file():
        console.print(f"  review     {page}  (open it in a browser to look and listen)", soft_wrap=True,
                      highlight=False)  # fmt: skip


class ManifestProgress:
    """What the terminal shows while renders run, fed by the manifests the flow rewrites: a row for the
    stage running (with the finished stages' times, and the instance time held so far and what it
    costs) above a row per segment for one short render, or a row per manifest (per voice). A terminal
    that is not interactive (CI, a pipe) gets plain lines as things finish instead of a live display."""

    def __init__(
        self,
        manifest_path: Path | dict[str, Path],
        segment_ids: list[str],
        price: HourlyPrice | None = None,
    ) -> None:
        self.paths = manifest_path if isinstance(manifest_path, dict) else {"segments": manifest_path}
        self.ids = segment_ids
        self.price = price
        self.per_segment = len(self.paths) == 1 and len(segment_ids) <= PER_SEGMENT_BARS_UP_TO
        self.live = console.is_terminal
        self.progress = StagedProgress(
            TextColumn("{task.description}", table_column=Column(no_wrap=True)),
            BarColumn(),
            TextColumn("{task.fields[status]}", table_column=Column(no_wrap=True, overflow="ellipsis")),
            TimeElapsedColumn(), console=console, transient=False,
        )  # fmt: skip
        self.stop = threading.Event()
        self.rows: dict[str, TaskID] = {}
        self.said: dict[str, str] = {}  # plain lines: what was last said of each segment and stage
        self.started_after = {
            name: p.stat().st_mtime if p.exists() else 0.0 for name, p in self.paths.items()
        }
        # name -> (its file's mtime, inode and size, its manifest): each save is a new file (a rename)
        self.loaded: dict[str, tuple[tuple[int, int, int], RenderManifest]] = {}

    def __enter__(self) -> ManifestProgress:
        if self.per_segment:
            for segment_id in self.ids:
                self.rows[segment_id] = self.progress.add_task(segment_id, total=1, status="waiting")
        else:
            for name in self.paths:
                self.rows[name] = self.progress.add_task(name, total=len(self.ids), status="waiting")
        if self.live:
            self.progress.start()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.loaded.clear()  # the last view from the files as they are now
        self._update()
        if self.live:
            self.progress.stop()

    def _poll(self) -> None:
        while not self.stop.wait(0.2):
            self._update()

    def _update(self) -> None:
        for name, path in self.paths.items():
            self._update_one(name, path)

    def _update_one(self, name: str, path: Path) -> None:
        try:
            written = path.stat()
            if written.st_mtime <= self.started_after[name]:
                return
            manifest = self._manifest(name, path, (written.st_mtime_ns, written.st_ino, written.st_size))
        except (OSError, ValueError):
            return  # not written yet (or from an earlier render): keep the last view
        self.progress.stage_line = "stage: " + stage_text(manifest, self.price)
        if not self.live:
            self._say_stages(manifest)
        finished = 0
        for record in manifest.segments:
            done = record.status in {SegmentStatus.DONE, SegmentStatus.FAILED}
            finished += done
            if self.per_segment and record.id in self.rows:
                self.progress.update(self.rows[record.id], completed=int(done))
                self._show(record.id, segment_label(record, manifest.stage))
        if not self.per_segment:
            running = manifest.state is RenderState.RUNNING
            stage = " (re-timing the video)" if running and manifest.outputs else ""
            self.progress.update(self.rows[name], completed=finished)
            self._show(name, f"{finished}/{len(self.ids)} {manifest.state.value}{stage}")

    def _manifest(self, name: str, path: Path, version: tuple[int, int, int]) -> RenderManifest:
        """The manifest at ``path``, parsed again only when it was written since (the stage's time
        still moves on every tick)."""
        cached = self.loaded.get(name)
        if cached is None or cached[0] != version:
            cached = self.loaded[name] = (version, RenderManifest.load(path))
        return cached[1]

    def _show(self, row: str, status: str) -> None:
        self.progress.update(self.rows[row], status=status)
        if not self.live and self.said.get(row) != status and status_is_settled(status):
            self.said[row] = status
            console.print(f"{row}: {status}", highlight=False, soft_wrap=True)

    def _say_stages(self, manifest: RenderManifest) -> None:
        """Plain lines: each stage once it is done, with its time."""
        for stage, seconds in manifest.stage_seconds.items():
            if self.said.get(f"stage {stage}") is None:
                self.said[f"stage {stage}"] = "said"
                console.print(f"stage {stage}: {seconds:.2f} s", highlight=False)


class StagedProgress(Progress):
    """Progress rows under one line of their own: the stage (its length never squeezes the rows)."""

    stage_line = "stage: starting"

    def get_renderables(self) -> Iterable[RenderableType]:
        line = Text.from_markup(self.stage_line, overflow="ellipsis")
        line.no_wrap = True
        yield line
        yield self.make_tasks_table(self.tasks)


def stage_text(manifest: RenderManifest, price: HourlyPrice | None, now: float | None = None) -> str:
    """The stage running (and for how long), the stages done with their times, and the instance time
    held so far with its cost; once the instance is let go, the measured figures."""
    now = time.time() if now is None else now
    done = ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in manifest.stage_seconds.items())
    parts = []
    if manifest.stage is not None and manifest.stage_started_at is not None:
        parts.append(f"[bold]{manifest.stage}[/] {now - manifest.stage_started_at:.1f} s")
    elif manifest.state is not RenderState.RUNNING:
        parts.append(f"[bold]{manifest.state.value}[/]")
    if done:
        parts.append(f"done: {done}")
    if manifest.released_at is not None:
        parts.append(f"GPU {manifest.gpu_seconds:.1f} s held, {manifest.cost_text()}")
    elif manifest.held_since is not None:
        held = max(0.0, now - manifest.held_since) * (manifest.instances or 1)  # each instance it woke
        cost = price.cost(held) if price is not None else None
        parts.append(f"GPU ≈ {held:.0f} s held so far" + (f", ≈ ${cost:.4f}" if cost is not None else ""))
    return " · ".join(parts) or "starting"


def status_is_settled(status: str) -> bool:
    """A segment label worth a plain line: it finished, failed, or a take was re-rolled."""
    return status.startswith(("cached", "synthesised", "[red]failed", "[yellow]re-rolled"))


def segment_label(record: SegmentRecord, stage: str | None = None) -> str:
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
    if record.attempts:
        return f"retrying ({record.attempts} attempt(s))"
    return "synthesising" if stage == "synthesise" else "waiting"
