"""Re-time a screen recording to a narration timeline: every scene held (its last frame frozen) or
trimmed (trailing hold only, never action) to its segment's frames, the narration, captions and chapters
muxed in, the result measured and published atomically only when no scene drifts more than one frame.
When it is signed (``sign``), the manifest is embedded last, after that check, and the signed file is
measured again: what is published is the signed file, checked.

How: the source is decoded once, resampled to the timeline's exact frame rate, and piped frame by
frame into one encoder per scene, so each scene is a clip whose real frame count can be measured. The
clips are joined by stream copy (bytes unchanged) with the narration (AAC; its encoder delay is
recorded in the MP4's edit list, so audio sample 0 plays at video time 0), the captions (mov_text)
and one chapter per scene. The verification then locates every clip's packets, byte for byte, in the
written MP4 and reads each scene's start and length from the MP4's own timestamps.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from narrate.errors import MarksError
from narrate.files import write_atomic, write_json_atomic
from narrate.track.timeline import Timeline
from narrate.video.encode import (
    EncodeSettings,
    ProgressCallback,
    SceneEncoding,
    VideoProgress,
    choose_encoder,
    encode_scenes,
)
from narrate.video.ffmpeg import Ffmpeg, ffmetadata_escape, packets, probe_video
from narrate.video.marks import SceneMarks, check_marks, load_marks
from narrate.video.plan import ScenePlan, plan_scenes
from narrate.video.verify import Expected, SceneMeasurement, VerifyReport, verify_output

SignStep = Callable[[Path, Path], None]  # (the checked MP4, where to write its signed copy)


@dataclass(frozen=True)
class RetimeResult:
    mp4: Path
    report: Path
    fps: str
    total_frames: int
    video_encoder: str
    audio_encoder: str
    subtitle_codec: str
    chapters: int
    audio_offset_samples: int | None  # measured lag of the muxed narration against the WAV
    seconds: float  # wall time of the whole re-timing
    scenes: list[SceneMeasurement] = field(default_factory=list)


@dataclass(frozen=True)
class RetimeInputs:
    """What a recording is re-timed to: the recording, its scene marks, and a finished narration (its
    timeline, track and captions)."""

    video: str | Path
    marks: SceneMarks | str | Path
    timeline: Timeline | str | Path
    narration_wav: str | Path
    captions: str | Path


def retime_video(
    inputs: RetimeInputs,
    out_mp4: str | Path,
    progress: ProgressCallback | None = None,
    settings: EncodeSettings | None = None,
    ffmpeg: Ffmpeg | None = None,
    sign: SignStep | None = None,
) -> RetimeResult:
    """Render ``out_mp4`` (and ``<name>.report.json`` beside it) from the source video re-timed to the
    timeline; nothing is published unless every scene measures within one frame of the timeline (the
    signed file's scenes too, when ``sign`` signs it)."""
    began = time.monotonic()
    ff, settings = ffmpeg or Ffmpeg(), settings or EncodeSettings()
    report = progress or (lambda _: None)
    video, out_mp4, marks, timeline = Path(inputs.video), Path(out_mp4), inputs.marks, inputs.timeline
    narration_wav = Path(inputs.narration_wav)
    if not isinstance(timeline, Timeline):
        timeline = Timeline.model_validate_json(Path(timeline).read_text(encoding="utf-8"))
    report(VideoProgress("probe", 0, 1, video.name))
    info = probe_video(ff, video)
    ids = [s.id for s in timeline.segments]
    if isinstance(marks, SceneMarks):
        if problems := check_marks(marks, ids, info.seconds):
            raise MarksError("marks", problems)
    else:
        marks = load_marks(marks, ids, info.seconds)
    plans = plan_scenes(marks, timeline, info.seconds)
    encoder = settings.video_encoder or choose_encoder(ff)
    out_mp4.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_mp4.stem}-work-", dir=out_mp4.parent))
    try:
        job = SceneEncoding(video, info.width, info.height, timeline, plans, encoder, settings)
        encoded = encode_scenes(ff, job, work, report)
        clips, plans = [clip for clip, _ in encoded], [plan for _, plan in encoded]
        clip_packets = [packets(ff, clip) for clip in clips]
        chapters_file = _write_chapters(work / "chapters.txt", timeline, plans)
        verified: list[VerifyReport] = []

        def write(tmp: Path) -> None:
            report(VideoProgress("mux", 0, 1, out_mp4.name))
            parts = MuxParts(clips, narration_wav, Path(inputs.captions), chapters_file, timeline)
            muxed = tmp if sign is None else work / f"unsigned{out_mp4.suffix}"
            mux(ff, parts, settings, muxed, work)
            report(VideoProgress("verify", 0, 1, out_mp4.name))
            expected = Expected(timeline, plans, clip_packets, narration_wav)
            measured = verify_output(ff, muxed, expected, out_mp4.name)
            if sign is not None:
                report(VideoProgress("sign", 0, 1, out_mp4.name))
                sign(muxed, tmp)
                report(VideoProgress("verify", 0, 1, out_mp4.name))
                measured = verify_output(ff, tmp, expected, out_mp4.name)  # the signed file, as published
            verified.append(measured)

        write_atomic(out_mp4, write)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = RetimeResult(
        mp4=out_mp4,
        report=out_mp4.with_name(out_mp4.stem + ".report.json"),
        fps=timeline.fps,
        total_frames=timeline.total_frames,
        video_encoder=encoder,
        audio_encoder="aac",
        subtitle_codec="mov_text",
        chapters=verified[0].chapters,
        audio_offset_samples=verified[0].audio_offset_samples,
        seconds=round(time.monotonic() - began, 3),
        scenes=verified[0].scenes,
    )
    write_json_atomic(result.report, _report_json(result, video, marks))
    report(VideoProgress("done", 1, 1, out_mp4.name))
    return result


def _write_chapters(path: Path, timeline: Timeline, plans: list[ScenePlan]) -> Path:
    fps = timeline.frame_rate()
    lines = [";FFMETADATA1", f"title={ffmetadata_escape(timeline.title)}",
             f"comment={ffmetadata_escape(timeline.disclosure)}"]  # fmt: skip
    for plan in plans:
        lines += ["[CHAPTER]", f"TIMEBASE={fps.denominator}/{fps.numerator}", f"START={plan.start_frame}",
                  f"END={plan.end_frame}", f"title={ffmetadata_escape(plan.id)}"]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class MuxParts:
    """What goes into the MP4: the scene clips in order, the narration, the captions, the chapters."""

    clips: list[Path]
    wav: Path
    captions: Path
    chapters_file: Path
    timeline: Timeline


def mux(ff: Ffmpeg, parts: MuxParts, settings: EncodeSettings, out: Path, work: Path) -> None:
    """The clips joined byte for byte with the narration (AAC), captions and chapters, into ``out``."""
    clips, wav, captions, chapters_file, timeline = (
        parts.clips, parts.wav, parts.captions, parts.chapters_file, parts.timeline
    )  # fmt: skip
    # auto_convert 0: packets are joined byte for byte (no parameter sets added in-band), so the
    # verification can find each clip in the MP4.
    listing = work / "scenes.ffconcat"
    listing.write_text(
        "ffconcat version 1.0\n" + "".join(f"file '{c.name}'\n" for c in clips), encoding="utf-8"
    )
    args = [
        "-loglevel", "error", "-f", "concat", "-safe", "0", "-auto_convert", "0", "-i", str(listing),
        "-i", str(wav), "-i", str(captions), "-i", str(chapters_file),
        "-map", "0:v:0", "-map", "1:a:0", "-map", "2:s:0", "-map_metadata", "3", "-map_chapters", "3",
        "-c:v", "copy", "-c:a", "aac", "-b:a", settings.audio_bitrate, "-ar", str(timeline.sample_rate),
        "-c:s", "mov_text", "-metadata:s:s:0", f"language={settings.language}",
        "-metadata:s:a:0", f"language={settings.language}",
        "-movflags", "+faststart", "-f", "mp4", str(out),
    ]  # fmt: skip
    ff.run(args, f"mux {out.name}")


def _report_json(result: RetimeResult, video: Path, marks: SceneMarks) -> dict[str, object]:
    data = asdict(result)
    data["mp4"], data["report"] = result.mp4.name, result.report.name
    data["source_video"] = str(video)
    data["scenes"] = [asdict(s) | {"drift_frames": s.drift_frames} for s in result.scenes]
    data["max_drift_frames"] = max((s.drift_frames for s in result.scenes), default=0)
    data["marks"] = json.loads(marks.model_dump_json())
    return data
