"""Video tasks: find and check the screen recording and its marks before anything is synthesised, and
re-time the recording to each finished narration (one MP4 per voice, measured before it is published)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from narrate.errors import MarksError, VideoError
from narrate.log import run_logger
from narrate.outputs import VIDEO
from narrate.provenance.config import Signing
from narrate.script import NarrationScript
from narrate.video import Ffmpeg, SceneMarks, VideoProgress, action_seconds, load_marks, probe_video
from narrate.video.marks import check_marks, marks_video_path


@dataclass(frozen=True)
class VideoPlan:
    recording: Path
    marks_path: Path
    marks: SceneMarks
    action_seconds: dict[str, float]  # each scene's action: the least its segment may last


@task(name="plan-video", cache_policy=NO_CACHE)
def plan_video(
    narration: NarrationScript, recording: str | None = None, marks: str | None = None
) -> VideoPlan:
    """The recording and marks a run asks for (else the script's ``video:``), validated against the
    script's segments and the recording's length; the example's placeholder is drawn when missing."""
    source = narration.video
    marks_path = Path(marks) if marks else (source.marks if source else None)
    if marks_path is None:
        raise VideoError(
            "a video needs its scene marks: give --marks MARKS, or `video: {marks: ...}` in the script"
        )
    ids = [segment.id for segment in narration.segments]
    shape = load_marks(marks_path, ids)  # checked against the recording below, once its length is known
    path = Path(recording) if recording else (source.recording if source and source.recording else None)
    path = path or marks_video_path(shape, marks_path)
    if path is None:
        raise VideoError(f"{marks_path}: which recording? give VIDEO, or `video:` in the marks file")
    if not path.is_file():
        if not shape.draw_if_missing:
            raise VideoError(f"recording {path} not found; fix the path")
        from narrate.video.demo import make_demo_video

        run_logger().info("drawing the example's placeholder recording %s from its marks", path)
        make_demo_video(shape, path, narration.output.frame_rate)
    seconds = probe_video(Ffmpeg(), path).seconds
    if problems := check_marks(shape, ids, seconds):
        raise MarksError(str(marks_path), problems)
    return VideoPlan(path, marks_path, shape, action_seconds(shape, narration.output.frame_rate, seconds))


@task(name="retime-to-narration", cache_policy=NO_CACHE)
def retime_to_narration(
    plan: VideoPlan, outputs: dict[str, str], out_dir: str, signing: Signing | None = None
) -> str:
    """The recording re-timed to this narration, as ``<out_dir>/video.mp4``; the report beside it.
    With ``signing``, the MP4 is published signed (Content Credentials) and recorded in provenance.json."""
    from narrate.video import RetimeInputs, retime_video
    from tasks.provenance import VideoSigner

    logger = run_logger()

    def progress(step: VideoProgress) -> None:
        if step.step != "encode" or step.done == step.total:
            logger.info("video %s %s %d/%d", step.step, step.detail, step.done, step.total)

    inputs = RetimeInputs(plan.recording, plan.marks, outputs["timeline"], outputs["wav"], outputs["vtt"])
    signer = VideoSigner(Path(out_dir), signing, plan.recording) if signing is not None else None
    result = retime_video(inputs, Path(out_dir) / VIDEO, progress=progress, sign=signer)
    if signer is not None:
        signer.record()
    worst = max((abs(s.drift_frames) for s in result.scenes), default=0)
    logger.info("video %s: %d frames, %d scenes, worst drift %g frame(s), %.1f s", result.mp4,
                result.total_frames, len(result.scenes), worst, result.seconds)  # fmt: skip
    return str(result.mp4)
