"""``review.html``: one self-contained, offline page in each render folder to look at and listen to the
render. It plays the track with its captions, shows the timeline picture (click it to play from
there), the re-timed video with its subtitles when the render made one, and a row per segment: its
words (and what was said instead, where the lexicon changed them), where it starts, how long it is,
whether it came from the cache, its attempts, the quality gate's checks and takes, a player for that
segment alone and the commands that make it again.

It loads nothing from the network: the page's own style and script are inline, the captions are
inline (a ``data:`` track, which a page opened from disk may load), and the audio, video and picture
are the render's own files beside it.
"""

from __future__ import annotations

import base64
import html
import json
import shlex
from pathlib import Path

from narrate.manifest import RenderManifest, SegmentRecord
from narrate.outputs import MP3, REVIEW, TIMELINE_PNG, VIDEO, VTT, WAV, RenderFolder
from narrate.review.picture import LEFT, RIGHT, WIDTH
from narrate.track.timeline import Timeline, TimelineSegment
from narrate.voices.report import ClipReport, clip_report_of_render


def review_html(folder: RenderFolder) -> str:
    """The page of the render in ``folder`` (its timeline and manifest must exist)."""
    timeline, manifest = folder.timeline(), folder.manifest()
    vtt = folder.path / VTT
    captions = data_uri("text/vtt", vtt.read_bytes()) if vtt.is_file() else None
    audio = WAV if (folder.path / WAV).is_file() else MP3
    records = {record.id: record for record in manifest.segments}
    rows = "\n".join(
        _segment_row(segment, records.get(segment.id), timeline, audio, manifest)
        for segment in timeline.segments
    )
    video = (folder.path / VIDEO).is_file() and "video" in manifest.outputs
    provenance = folder.provenance()
    facts = [
        f"{len(timeline.segments)} segments, {_clock(timeline.total_seconds)}",
        f"{timeline.loudness.output_lufs} LUFS, true peak {timeline.loudness.true_peak_dbtp} dBTP",
        f"voice: {timeline.engine} ({timeline.voice})",
        f"model: {timeline.model_id}",
        f"render {manifest.state.value}, {manifest.updated_at}",
        f"GPU: {manifest.gpu_seconds:.1f} GPU-seconds, {manifest.cost_text()}",
    ]
    return PAGE.format(
        title=html.escape(timeline.title),
        facts="".join(f"<li>{html.escape(fact)}</li>" for fact in facts),
        disclosure=html.escape(timeline.disclosure),
        emulated=(
            f'<p class="warn">Emulated: {html.escape(timeline.emulated)} (not the real voice)</p>'
            if timeline.emulated
            else ""
        ),
        provenance=(
            f'<p class="credentials">Content Credentials: {html.escape(provenance.summary())}</p>'
            if provenance is not None
            else ""
        ),
        audio=audio,
        track=_track_element(captions, timeline.language),
        picture=TIMELINE_PNG,
        video=_video_section(captions, timeline.language) if video else "",
        reference=_reference_section(clip_report_of_render(manifest)),
        rows=rows,
        data=html.escape(json.dumps(_page_data(timeline)), quote=False),
    )


def write_review(folder: RenderFolder) -> Path:
    from narrate.files import write_text_atomic

    return write_text_atomic(folder.path / REVIEW, review_html(folder))


def _page_data(timeline: Timeline) -> dict[str, object]:
    """What the page's script needs: where the plot is in the picture, and the track's length."""
    return {
        "totalSeconds": timeline.total_seconds,
        "plotLeft": LEFT / WIDTH,
        "plotWidth": (WIDTH - LEFT - RIGHT) / WIDTH,
        "segments": [{"id": s.id, "start": s.start_seconds, "end": s.end_seconds} for s in timeline.segments],
    }


def _segment_row(
    segment: TimelineSegment,
    record: SegmentRecord | None,
    timeline: Timeline,
    audio: str,
    manifest: RenderManifest,
) -> str:
    rate = timeline.sample_rate
    start, end = segment.start_sample / rate, segment.end_sample / rate
    words = html.escape(segment.text)
    if segment.spoken_text:
        words += f'<div class="spoken">said as: {html.escape(segment.spoken_text)}</div>'
    cells = [
        f'<td class="id">{html.escape(segment.id)}</td>',
        f"<td>{words}</td>",
        f'<td class="num">{_clock(start)}</td>',
        f'<td class="num">{segment.clip_samples / rate:.2f} s</td>',
        f"<td>{'cached' if segment.cache_hit else 'synthesised'}</td>",
        f'<td class="num">{record.attempts if record else ""}</td>',
        f"<td>{_gate_cell(segment, record)}</td>",
        f'<td><audio class="segment" controls preload="none" data-start="{start:.6f}" '
        f'data-end="{end:.6f}" src="{audio}#t={start:.3f},{end:.3f}"></audio></td>',
        f"<td><code>{html.escape(_command(segment, record, manifest))}</code></td>",
    ]
    return f'<tr id="segment-{html.escape(segment.id)}">{"".join(cells)}</tr>'


def _gate_cell(segment: TimelineSegment, record: SegmentRecord | None) -> str:
    qc = segment.qc
    if qc is None:
        return ""
    verdict = "passed" if qc.passed else ("picked" if qc.picked else "best of failed takes")
    checks = ", ".join(
        f"{name} {'✓' if check.get('passed') else ('✗' if check.get('passed') is False else '–')}"
        for name, check in qc.checks.items()
    )
    takes = ""
    if record is not None and len(record.takes) > 1:
        takes = "<br>" + "<br>".join(
            html.escape(f"take {t.take}: {'passed' if t.passed else t.summary}") for t in record.takes
        )
    return f"take {qc.take} {verdict} ({qc.takes} judged)<br><small>{html.escape(checks)}</small>{takes}"


def _command(segment: TimelineSegment, record: SegmentRecord | None, manifest: RenderManifest) -> str:
    """What makes this segment again: a retry where it failed, else takes to pick from."""
    if record is not None and record.status.value == "failed":
        return f"narrate retry {shlex.quote(str(manifest.path))} --segment {shlex.quote(segment.id)}"
    return f"narrate takes {shlex.quote(manifest.script)} --segment {shlex.quote(segment.id)} --count 3"


def _track_element(captions: str | None, language: str | None) -> str:
    if captions is None:
        return ""
    label = html.escape(language or "captions")
    return f'<track kind="captions" label="{label}" src="{captions}" default>'


def _video_section(captions: str | None, language: str | None) -> str:
    return (
        '<section><h2>The re-timed recording</h2><video id="video" controls preload="metadata" '
        f'src="{VIDEO}">{_track_element(captions, language)}</video></section>'
    )


def _reference_section(report: ClipReport | None) -> str:
    """The cloned voice's reference clip: where it was cut from, each check's value and verdict, and
    its transcript (``narrate voice add``'s report); nothing for other voices."""
    if report is None:
        return ""
    rows = "".join(
        f'<tr><td>{html.escape(c.name)}</td><td class="num">'
        f"{'' if c.value is None else html.escape(f'{c.value:g} {c.unit}')}</td>"
        f'<td class="verdict-{c.verdict.value}">{c.verdict.value}</td>'
        f"<td>{html.escape(c.detail + ('; ' + c.advice if c.advice else ''))}</td></tr>"
        for c in report.checks
    )
    source, cut, transcript = report.source, report.cut, report.transcript
    cut_text = (
        f"from {source.file} ({source.codec}, {source.seconds:.1f} s): {cut.start_seconds:.2f}-"
        f"{cut.end_seconds:.2f} s, {cut.clip_seconds:.2f} s at {cut.loudness_lufs:g} LUFS"
    )
    accepted = (
        " Its warnings were accepted (--accept-warnings)."
        if report.accepted_warnings and report.problems()
        else ""
    )
    return (
        f"<h2>Reference clip of {html.escape(report.voice)}</h2>"
        f"<p>{html.escape(cut_text)}.{accepted} Transcript ({html.escape(transcript.origin)}): "
        f"<q>{html.escape(transcript.text)}</q></p>"
        '<table class="reference"><thead><tr><th>check</th><th>value</th><th>verdict</th><th>what it means'
        f"</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def data_uri(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def _clock(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{rest:05.2f}"


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · narrate review</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1240px; color: #222; }}
h1 {{ margin: 0 0 4px; font-size: 22px; }} h2 {{ font-size: 16px; margin: 24px 0 8px; }}
ul.facts {{ list-style: none; padding: 0; margin: 0 0 8px; color: #555; }}
ul.facts li {{ display: inline; margin-right: 16px; }}
.disclosure {{ color: #555; font-size: 12px; }} .warn {{ color: #a40; font-weight: 600; }}
.credentials {{ color: #264; font-size: 12px; }}
#player {{ width: 100%; }} #caption {{ min-height: 1.5em; font-size: 16px; margin: 6px 0; }}
#picture-box {{ position: relative; cursor: pointer; }} #picture {{ width: 100%; display: block; }}
#playhead {{ position: absolute; top: 0; bottom: 0; width: 2px; background: #0a7; left: 0; }}
video {{ display: block; max-width: 100%; height: 360px; background: #000; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border-top: 1px solid #ddd; padding: 6px;
  vertical-align: top; text-align: left; }} td.num {{ text-align: right; white-space: nowrap; }}
td.id {{ font-weight: 600; white-space: nowrap; }} .spoken {{ color: #666; font-style: italic; }}
tr.playing {{ background: #eef8f2; }} audio.segment {{ width: 220px; }}
code {{ font-size: 12px; word-break: break-all; }}
.verdict-warn {{ color: #a40; font-weight: 600; }} .verdict-fail {{ color: #b00; font-weight: 600; }}
</style></head>
<body>
<h1>{title}</h1>
<ul class="facts">{facts}</ul>
<p class="disclosure">{disclosure}</p>
{emulated}{provenance}
<audio id="player" controls preload="metadata" src="{audio}">{track}</audio>
<div id="caption" aria-live="polite"></div>
<div id="picture-box" title="click to play from here"><img id="picture" src="{picture}"
 alt="timeline: waveform, scene boundaries, segment labels, short-term loudness">
<div id="playhead"></div></div>
{video}
{reference}
<h2>Segments</h2>
<table><thead><tr><th>segment</th><th>words</th><th>starts</th><th>length</th><th>source</th>
<th>attempts</th><th>quality gate</th><th>listen</th><th>make it again</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<script id="render-data" type="application/json">{data}</script>
<script>
const data = JSON.parse(document.getElementById("render-data").textContent);
const player = document.getElementById("player");
const caption = document.getElementById("caption");
const box = document.getElementById("picture-box"), head = document.getElementById("playhead");
for (const track of player.textTracks) {{
  track.mode = "hidden";
  track.addEventListener("cuechange", () => {{
    caption.textContent = Array.from(track.activeCues || []).map(c => c.text).join(" ");
  }});
}}
function place() {{
  const share = data.plotLeft + data.plotWidth * (player.currentTime / data.totalSeconds);
  head.style.left = (share * 100) + "%";
  const now = player.currentTime;
  for (const s of data.segments) {{
    const row = document.getElementById("segment-" + s.id);
    if (row) row.classList.toggle("playing", !player.paused && now >= s.start && now < s.end);
  }}
}}
player.addEventListener("timeupdate", place);
place();
box.addEventListener("click", (event) => {{
  const rect = box.getBoundingClientRect();
  const share = ((event.clientX - rect.left) / rect.width - data.plotLeft) / data.plotWidth;
  player.currentTime = Math.max(0, Math.min(1, share)) * data.totalSeconds;
  player.play();
}});
for (const clip of document.querySelectorAll("audio")) {{
  clip.addEventListener("play", () => {{
    for (const other of document.querySelectorAll("audio, video")) if (other !== clip) other.pause();
  }});
}}
</script>
</body></html>
"""
