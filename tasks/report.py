"""Report tasks: what a render did, as Prefect artifacts on its run (table, summary, link to outputs)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from narrate.log import run_logger
from narrate.manifest import RenderManifest, RenderState, SegmentRecord, SegmentStatus
from narrate.outputs import TIMELINE_PNG, RenderFolder
from narrate.review.page import data_uri, write_review
from narrate.track.timeline import Timeline
from narrate.voices.report import clip_report_of_render, report_markdown


def artifact_key(manifest: RenderManifest) -> str:
    """Artifacts of renders into the same folder share a key, so the UI shows their history."""
    return "render-" + (re.sub(r"[^a-z0-9]+", "-", Path(manifest.out_dir).name.lower()).strip("-") or "out")


def segment_rows(manifest: RenderManifest) -> list[dict[str, Any]]:
    timeline = finished_timeline(manifest)
    rate = timeline.sample_rate if timeline else 1
    placed = {s.id: s for s in timeline.segments} if timeline else {}
    rows = []
    for record in manifest.segments:
        segment = placed.get(record.id)
        rows.append(
            {
                "id": record.id,
                "duration_s": round(segment.clip_samples / rate, 3) if segment else None,
                "start_s": segment.start_seconds if segment else None,
                "cache_hit": record.cache_hit,
                "attempts": record.attempts,
                "status": record.status.value,
                "gate": gate_text(record),
                "error": record.error or "",
            }
        )
    return rows


def gate_text(record: SegmentRecord) -> str:
    """The quality gate's decision on a segment: which take it kept, and why the others went."""
    kept = record.kept
    if kept is None:
        return ""
    verdict = "passed" if kept.passed else ("picked" if kept.picked else f"kept the best: {kept.summary}")
    rerolled = [t for t in record.takes if not t.passed and t.cache_key != kept.cache_key]
    text = f"take {kept.take} {verdict}"
    if rerolled:
        text += "; re-rolled " + "; ".join(f"take {t.take}: {t.summary}" for t in rerolled)
    return text


def summary_markdown(manifest: RenderManifest) -> str:
    timeline = finished_timeline(manifest)
    synthesised = sum(1 for s in manifest.segments if s.status is SegmentStatus.DONE and not s.cache_hit)
    cached = sum(1 for s in manifest.segments if s.cache_hit)
    lines = [f"# {manifest.title}", "", f"**{manifest.state.value}** — {manifest.script}", ""]
    if manifest.emulated:
        lines += [f"**Emulated:** {manifest.emulated}; not the real voice.", ""]
    if timeline:
        loudness = timeline.loudness
        lines += [
            f"- length: {timeline.total_seconds:.2f} s "
            f"({timeline.total_frames} frames at {timeline.fps} fps)",
            f"- loudness: {loudness.output_lufs} LUFS (target {loudness.target_lufs}), true peak "
            f"{loudness.true_peak_dbtp} dBTP; true-peak limiter: at most "
            f"{loudness.limiter_max_reduction_db} dB, {loudness.limiter_mean_reduction_db} dB on average "
            f"over {loudness.limited_seconds} s",
        ]
    rerolled = [s.id for s in manifest.segments if any(not t.passed for t in s.takes)]
    lines += [
        f"- segments: {len(manifest.segments)} ({cached} from the cache, {synthesised} synthesised)",
        f"- quality gate: {len(rerolled)} segment(s) with a failed take"
        + (f" ({', '.join(rerolled)}): see the segment table's gate column" if rerolled else ""),
        f"- GPU-seconds held: {manifest.gpu_seconds:.1f}, {manifest.cost_text()}",
    ]
    if timeline and (provenance := RenderFolder(Path(manifest.out_dir)).provenance()) is not None:
        lines.append(f"- Content Credentials (C2PA), as read back after signing: {provenance.summary()}")
    if not synthesised and not manifest.failed() and "ensure" not in manifest.stage_seconds:
        lines.append("- nothing to synthesise: every segment came from the cache; the endpoint was not woken")
    failed = manifest.failed()
    if failed:
        manifest_path = manifest.path
        lines += ["", f"## {len(failed)} segment(s) failed", ""]
        lines += [f"- `{sid}`: {error}" for sid, error in failed.items()]
        lines += [
            "",
            "Retry only these: `narrate retry " + str(manifest_path) + "`, or run the deployment "
            f"`retry-failed-segments/retry-failed-segments` with `manifest = {manifest_path}`.",
        ]
    elif manifest.error:
        lines += ["", f"Error: {manifest.error}"]
    return "\n".join(lines) + "\n"


@task(name="publish-render-report", cache_policy=NO_CACHE)
def publish_render_report(manifest: RenderManifest) -> None:
    """Table of segments, a summary and a link to the outputs; never fails the render."""
    key = artifact_key(manifest)
    try:
        create_table_artifact(segment_rows(manifest), key=f"{key}-segments", description="Segments")
        create_markdown_artifact(summary_markdown(manifest), key=f"{key}-summary", description="Summary")
        create_link_artifact(
            Path(manifest.out_dir).resolve().as_uri(), link_text=manifest.out_dir, key=f"{key}-outputs"
        )
        if (clip := clip_report_of_render(manifest)) is not None:
            create_markdown_artifact(
                report_markdown(clip), key=f"{key}-reference-clip", description="Reference clip"
            )
        if (page := write_review_page(manifest)) is not None:
            create_markdown_artifact(timeline_markdown(page), key=f"{key}-timeline", description="Timeline")
    except Exception as exc:  # the report is a view of the manifest, which is already written
        run_logger().warning("could not publish the render report: %s", exc)


def write_review_page(manifest: RenderManifest) -> Path | None:
    """review.html in the render folder, once it has a timeline (the video step may still fail)."""
    folder = RenderFolder(Path(manifest.out_dir))
    return write_review(folder) if folder.has_timeline() else None


def timeline_markdown(page: Path) -> str:
    """The timeline picture, inline (the UI shows it without reaching the render's machine), and where
    the review page is."""
    picture = page.with_name(TIMELINE_PNG)
    lines = ["# Timeline", ""]
    if picture.is_file():
        inline = data_uri("image/png", picture.read_bytes())
        lines += [f"![timeline: waveform, scene boundaries, loudness]({inline})", ""]
    lines += [f"Review page (open it in a browser on this machine): `{page.resolve()}`"]
    return "\n".join(lines) + "\n"


def finished_timeline(manifest: RenderManifest) -> Timeline | None:
    """The timeline of a completed render; None before (or if it is gone)."""
    folder = RenderFolder(Path(manifest.out_dir))
    if manifest.state is not RenderState.COMPLETED or not folder.has_timeline():
        return None
    return folder.timeline()
