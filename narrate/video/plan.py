"""Which source frames each scene of the re-timed video shows: the timeline's frames for the scene, the
source scene played from its mark, then either its last frame frozen or its trailing hold trimmed (never
its action)."""

from __future__ import annotations

from dataclasses import dataclass

from narrate.errors import VideoError
from narrate.track.timeline import Timeline
from narrate.video.marks import SceneMarks, action_frames, source_frame


@dataclass(frozen=True)
class ScenePlan:
    """One scene in frames of the timeline's rate: which source frames it shows and how many are held."""

    id: str
    start_frame: int  # in the output (timeline)
    end_frame: int
    source_start: int  # in the source, resampled to the timeline's rate
    source_end: int
    action_frames: int

    @property
    def target_frames(self) -> int:
        return self.end_frame - self.start_frame

    @property
    def used_frames(self) -> int:
        return min(self.source_end - self.source_start, self.target_frames)

    @property
    def freeze_frames(self) -> int:
        return self.target_frames - self.used_frames

    @property
    def trimmed_frames(self) -> int:
        return self.source_end - self.source_start - self.used_frames


def plan_scenes(marks: SceneMarks, timeline: Timeline, video_seconds: float) -> list[ScenePlan]:
    """Each timeline segment's scene; raises VideoError naming every scene whose action would be cut."""
    fps = timeline.frame_rate()
    actions = action_frames(marks, fps, video_seconds)
    plans: list[ScenePlan] = []
    problems: list[str] = []
    for index, (mark, segment) in enumerate(zip(marks.scenes, timeline.segments, strict=True)):
        end_seconds = marks.scene_end_seconds(index, video_seconds)
        assert end_seconds is not None  # the video's duration is known here
        plan = ScenePlan(
            id=segment.id,
            start_frame=segment.start_frame,
            end_frame=segment.scene_end_frame,
            source_start=source_frame(mark.start_seconds, fps),
            source_end=source_frame(end_seconds, fps),
            action_frames=actions[mark.id],
        )
        if plan.source_end <= plan.source_start:
            problems.append(
                f"scene {plan.id!r}: shorter than one frame at {timeline.fps} fps; widen its marks"
            )
        elif plan.target_frames < plan.action_frames:
            problems.append(
                f"scene {plan.id!r}: its action lasts {plan.action_frames} frames "
                f"({float(plan.action_frames / fps):.3f} s) but the narration gives it "
                f"{plan.target_frames}; set min_seconds: {float(plan.action_frames / fps):.3f} on segment "
                f"{plan.id!r} (narrate.video.action_seconds gives it) and render the narration again"
            )
        plans.append(plan)
    if problems:
        raise VideoError("the narration would cut scene action:\n  " + "\n  ".join(problems))
    return plans
