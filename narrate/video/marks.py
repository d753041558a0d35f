"""Scene marks of a screen recording: where each scene starts in the source video and where its action
ends; the one definition, validated whole (every problem at once, as ``field.path: problem; fix``).

A marks file is YAML or JSON, either a mapping::

    video: demo.mp4              # optional, relative to the marks file
    end_seconds: 55              # optional end of the last scene (default: the end of the video)
    scenes:
      - {id: intro, start_seconds: 0, action_end_seconds: 3}
      - {id: connect-source, start_seconds: 9}

or a bare list of boundaries (seconds, or ``[hh:]mm:ss[.fff]`` strings), one per scene, whose ids are
the narration script's segment ids in order. A scene's action ends at ``action_end_seconds``; by default
at the next scene's start (the whole scene is action, nothing may be trimmed).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from narrate.errors import MarksError, ScriptError
from narrate.script import SEGMENT_ID_PATTERN, parse_script_text
from narrate.script_errors import item_label

_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$")


class SceneMark(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=SEGMENT_ID_PATTERN, description="The narration segment this scene shows.")
    start_seconds: float = Field(ge=0, description="Scene boundary in the source video.")
    action_end_seconds: float | None = Field(
        None, gt=0, description="Where the scene's own action ends; the rest is hold that may be trimmed."
    )


class SceneMarks(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    video: str | None = Field(None, description="The source video, relative to the marks file.")
    end_seconds: float | None = Field(None, gt=0, description="End of the last scene (default: video end).")
    draw_if_missing: bool = Field(
        False, description="Examples and tests: draw a placeholder `video:` from these marks if missing."
    )
    scenes: list[SceneMark] = Field(min_length=1)

    def scene_end_seconds(self, index: int, video_seconds: float | None) -> float | None:
        """Where scene ``index`` ends in the source: the next start, else end_seconds, else the video end."""
        if index + 1 < len(self.scenes):
            return self.scenes[index + 1].start_seconds
        return self.end_seconds if self.end_seconds is not None else video_seconds


def parse_clock(value: Any) -> Any:
    """``[hh:]mm:ss[.fff]`` to seconds; anything else is returned for pydantic to judge."""
    if isinstance(value, str) and (match := _CLOCK.match(value.strip())):
        hours, minutes, seconds = match.groups()
        return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    return value


def parse_marks(
    data: Any,
    segment_ids: Sequence[str],
    video_seconds: float | None = None,
    source: str = "marks",
) -> SceneMarks:
    """Plain data (a mapping or a bare list of boundaries) to validated marks for this script."""
    if isinstance(data, list) and all(not isinstance(item, dict) for item in data):
        if len(data) != len(segment_ids):
            raise MarksError(
                source,
                [
                    f"{len(data)} boundaries for {len(segment_ids)} script segments; give one start "
                    "time per segment, in script order"
                ],
            )
        data = {"scenes": [{"id": i, "start_seconds": t} for i, t in zip(segment_ids, data, strict=True)]}
    elif isinstance(data, list):
        data = {"scenes": data}
    if not isinstance(data, dict):
        raise MarksError(source, ["marks must be a mapping with `scenes:` or a list of start times"])
    data = _with_clock_times(data)
    try:
        marks = SceneMarks.model_validate(data)
    except ValidationError as exc:
        raise MarksError(source, [_describe(error, data) for error in exc.errors()]) from None
    problems = check_marks(marks, segment_ids, video_seconds)
    if problems:
        raise MarksError(source, problems)
    return marks


def load_marks(
    path: str | Path, segment_ids: Sequence[str], video_seconds: float | None = None
) -> SceneMarks:
    """Read and validate a YAML or JSON marks file against the script's segment ids (and the video)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MarksError(str(path), ["file not found; check the path"]) from None
    except UnicodeDecodeError:
        raise MarksError(str(path), ["not UTF-8 text; save the marks as UTF-8"]) from None
    try:
        data = parse_script_text(text, str(path), path.suffix.lower())
    except ScriptError as exc:
        raise MarksError(str(path), exc.problems) from None
    return parse_marks(data, segment_ids, video_seconds, str(path))


def marks_video_path(marks: SceneMarks, marks_path: str | Path) -> Path | None:
    """The marks' ``video:`` resolved against the marks file's folder."""
    return Path(marks_path).parent / marks.video if marks.video else None


def check_marks(marks: SceneMarks, segment_ids: Sequence[str], video_seconds: float | None) -> list[str]:
    """Every problem of validated-shape marks against the script and the video, as one line each."""
    problems = _id_problems([s.id for s in marks.scenes], list(segment_ids))
    for index, scene in enumerate(marks.scenes):
        where = f"scenes[{index}] (id {scene.id!r})"
        end = marks.scene_end_seconds(index, video_seconds)
        last = index + 1 == len(marks.scenes)
        if end is not None and scene.start_seconds >= end and not (last and marks.end_seconds is None):
            following = "end_seconds" if last else "the next scene's start"
            problems.append(
                f"{where}.start_seconds: {scene.start_seconds:g} is not before {following} ({end:g}); "
                "scene starts must increase"
            )
        action = scene.action_end_seconds
        if action is not None and action <= scene.start_seconds:
            problems.append(
                f"{where}.action_end_seconds: {action:g} is not after the scene's start "
                f"({scene.start_seconds:g}); set it where the scene's action ends"
            )
        elif action is not None and end is not None and action > end:
            problems.append(
                f"{where}.action_end_seconds: {action:g} is after the scene's end ({end:g}); "
                "the action must end inside its scene"
            )
        if video_seconds is not None and scene.start_seconds >= video_seconds:
            problems.append(
                f"{where}.start_seconds: {scene.start_seconds:g} is at or after the end of the video "
                f"({video_seconds:.3f} s); check the marks belong to this video"
            )
    if video_seconds is not None and marks.end_seconds is not None and marks.end_seconds > video_seconds:
        problems.append(
            f"end_seconds: {marks.end_seconds:g} is after the end of the video ({video_seconds:.3f} s); "
            "lower it or remove it"
        )
    return problems


def source_frame(seconds: float, fps: Fraction) -> int:
    """The frame of the source, resampled to ``fps``, nearest to ``seconds`` (halves round up)."""
    return math.floor(Fraction(str(seconds)) * fps + Fraction(1, 2))


def action_frames(marks: SceneMarks, fps: Fraction, video_seconds: float | None = None) -> dict[str, int]:
    """Frames of each scene's action on the ``fps`` grid: what a re-timed scene may never lose."""
    frames: dict[str, int] = {}
    for index, scene in enumerate(marks.scenes):
        end = scene.action_end_seconds
        if end is None:
            end = marks.scene_end_seconds(index, video_seconds)
        if end is None:
            raise MarksError(
                "marks",
                [
                    f"scenes[{index}] (id {scene.id!r}): where its action ends is unknown; set "
                    "action_end_seconds or end_seconds, or pass the video's duration"
                ],
            )
        frames[scene.id] = source_frame(end, fps) - source_frame(scene.start_seconds, fps)
    return frames


def action_seconds(marks: SceneMarks, fps: Fraction, video_seconds: float | None = None) -> dict[str, float]:
    """How long each scene's action lasts, in seconds rounded up to 1 µs: each segment's ``min_seconds``,
    so that the narration's layout never gives a scene fewer frames than its action."""
    return {
        scene_id: math.ceil(Fraction(frames) / fps * 1_000_000) / 1_000_000
        for scene_id, frames in action_frames(marks, fps, video_seconds).items()
    }


def _with_clock_times(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    if "end_seconds" in data:
        data["end_seconds"] = parse_clock(data["end_seconds"])
    if isinstance(data.get("scenes"), list):
        data["scenes"] = [
            {k: parse_clock(v) if k.endswith("_seconds") else v for k, v in s.items()}
            if isinstance(s, dict)
            else s
            for s in data["scenes"]
        ]
    return data


def _id_problems(mark_ids: list[str], segment_ids: list[str]) -> list[str]:
    problems: list[str] = []
    duplicates = sorted({i for i in mark_ids if mark_ids.count(i) > 1})
    if duplicates:
        problems.append(f"scenes: ids {', '.join(duplicates)} appear more than once; one mark per scene")
    missing = [i for i in segment_ids if i not in mark_ids]
    extra = [i for i in mark_ids if i not in segment_ids]
    if missing:
        problems.append(f"scenes: no mark for segment(s) {', '.join(missing)}; add one per script segment")
    if extra:
        problems.append(f"scenes: {', '.join(extra)} not in the script; remove them or fix the id's spelling")
    if not (missing or extra or duplicates) and mark_ids != segment_ids:
        problems.append(
            "scenes: not in the script's order; list the marks in the order of the script's segments"
        )
    return problems


_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">"}


def _describe(error: Any, data: dict[str, Any]) -> str:
    parts: list[str] = []
    for item in error["loc"]:
        if isinstance(item, int) and parts:
            parts[-1] += f"[{item}]" + item_label(data, "scenes", item)
        else:
            parts.append(str(item))
    location = ".".join(parts)
    kind = error["type"]
    message = error["msg"].removeprefix("Value error, ")
    if kind == "missing":
        message = "is required; add it"
    elif kind == "extra_forbidden":
        message = (
            "is not a known field (id, start_seconds, action_end_seconds); remove it or fix its spelling"
        )
    elif kind == "string_pattern_mismatch":
        message = "must be a segment id of the script (letters, digits, '_', '.' or '-')"
    elif kind in _BOUNDS:
        limit = next(iter(error["ctx"].values()))
        message = f"must be {_BOUNDS[kind]} {limit}, got {error['input']!r}; use a time inside the video"
    elif kind == "float_parsing":
        message = f"{error['input']!r} is not a time; write seconds (12.5) or mm:ss.fff"
    elif kind == "too_short":
        message = "is empty; add one mark per script segment"
    return f"{location}: {message}" if location else message
