"""Re-time a screen recording to a narration: scene marks in, one MP4 per voice out, each scene held or
trimmed (never its action) to its narration, measured frame by frame before it is published.

The API::

    marks = load_marks("demo.marks.yaml", segment_ids, video_seconds)   # MarksError on any problem
    action_seconds(marks, fps, video_seconds)       # {id: seconds}: each segment's min_seconds
    inputs = RetimeInputs(video, marks, timeline, narration_wav, captions)
    retime_video(inputs, out_mp4, progress=callback)
"""

from narrate.video.encode import EncodeSettings, ProgressCallback, VideoProgress
from narrate.video.ffmpeg import Ffmpeg, VideoInfo, probe_video
from narrate.video.marks import (
    SceneMark,
    SceneMarks,
    action_frames,
    action_seconds,
    load_marks,
    marks_video_path,
    parse_marks,
)
from narrate.video.plan import ScenePlan, plan_scenes
from narrate.video.retime import RetimeInputs, RetimeResult, retime_video
from narrate.video.verify import MAX_DRIFT_FRAMES, SceneMeasurement

__all__ = [
    "MAX_DRIFT_FRAMES",
    "EncodeSettings",
    "Ffmpeg",
    "ProgressCallback",
    "RetimeInputs",
    "RetimeResult",
    "SceneMark",
    "SceneMarks",
    "SceneMeasurement",
    "ScenePlan",
    "VideoInfo",
    "VideoProgress",
    "action_frames",
    "action_seconds",
    "load_marks",
    "marks_video_path",
    "parse_marks",
    "plan_scenes",
    "probe_video",
    "retime_video",
]
