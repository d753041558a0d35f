"""The clip quality report: each check's value and verdict, the cut, the transcript's origin; stored as
JSON beside the clip (``voices/NAME.clip.json``) for the review page and the Prefect report to show.

Load it with :func:`load_clip_report` (a clip's path), :func:`clip_report_of` (a voice) or
:func:`clip_report_of_render` (the voice a render spoke with).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from narrate.engines import Engine
from narrate.errors import NarrateError
from narrate.manifest import RenderManifest
from narrate.script import QwenCloneVoice, Voice, load_script

REPORT_SUFFIX = ".clip.json"


class Verdict(StrEnum):
    PASS = "pass"
    WARN = "warn"  # the clip is refused unless the person accepts the warnings
    FAIL = "fail"  # the clip is refused


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClipCheck(_Record):
    name: str
    value: float | None = Field(description="What was measured, in `unit`; None when it cannot be.")
    unit: str
    verdict: Verdict
    detail: str = Field(description="What the value means here.")
    advice: str | None = Field(None, description="What to do about a warning or a failure.")

    def line(self) -> str:
        """One line for a person: ``name: detail (verdict); advice``."""
        text = f"{self.name}: {self.detail}"
        return f"{text}; {self.advice}" if self.advice else text


class SourceInfo(_Record):
    file: str
    container: str
    codec: str
    channels: int
    sample_rate: int
    seconds: float


class CutInfo(_Record):
    """Where the clip was cut from the recording, in the recording's seconds."""

    start_seconds: float
    end_seconds: float
    clip_seconds: float
    shortened_pauses: list[float] = Field(
        default_factory=list, description="Pauses shortened, their seconds."
    )
    loudness_lufs: float = Field(description="The clip's loudness once normalised.")


class TranscriptInfo(_Record):
    text: str
    origin: str = Field(description="given | given, cut to the clip | recogniser draft | edited")
    confirmed: bool
    recogniser: str | None = None


class ClipReport(_Record):
    voice: str
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    source: SourceInfo
    cut: CutInfo
    checks: list[ClipCheck]
    accepted_warnings: bool = False
    transcript: TranscriptInfo
    clip_sha256: str

    def problems(self) -> list[ClipCheck]:
        return [c for c in self.checks if c.verdict is not Verdict.PASS]

    def with_transcript(self, transcript: TranscriptInfo) -> ClipReport:
        return self.model_copy(update={"transcript": transcript})


def clip_report_path(clip: Path) -> Path:
    """``voices/me.wav`` -> ``voices/me.clip.json``."""
    return clip.with_name(clip.stem + REPORT_SUFFIX)


def load_clip_report(clip: Path) -> ClipReport | None:
    """The report stored beside ``clip``; None for a clip made another way (or an unreadable report)."""
    path = clip_report_path(Path(clip))
    try:
        return ClipReport.model_validate_json(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValidationError, ValueError):
        return None


def clip_report_of(voice: Voice) -> ClipReport | None:
    """The clip report of a cloned voice's reference clip, if `narrate voice add` made it."""
    return load_clip_report(Path(voice.reference_clip)) if isinstance(voice, QwenCloneVoice) else None


def clip_report_of_render(manifest: RenderManifest) -> ClipReport | None:
    """The clip report of the cloned voice a render spoke with (the script read again, as it stands
    now); None for other engines, or when the script no longer reads."""
    if manifest.engine != Engine.QWEN_CLONE.value:
        return None
    try:
        narration = load_script(manifest.script)
        if manifest.voice_name is not None:
            narration = narration.with_named_voice(manifest.voice_name)
    except NarrateError:
        return None
    return clip_report_of(narration.voice)


def report_markdown(report: ClipReport) -> str:
    """The report as Markdown: the checks' table, the cut and the transcript."""
    source, cut = report.source, report.cut
    lines = [
        f"# Reference clip of `{report.voice}`",
        "",
        f"From `{source.file}` ({source.codec}, {source.channels} ch, {source.sample_rate} Hz, "
        f"{source.seconds:.1f} s): {cut.start_seconds:.2f}-{cut.end_seconds:.2f} s cut to "
        f"{cut.clip_seconds:.2f} s, normalised to {cut.loudness_lufs:.1f} LUFS.",
        "",
        "| check | value | verdict | detail |",
        "|---|---|---|---|",
    ]
    for check in report.checks:
        value = "" if check.value is None else f"{check.value:g} {check.unit}"
        detail = check.line().partition(": ")[2].replace("|", "/")
        lines.append(f"| {check.name} | {value} | {check.verdict.value} | {detail} |")
    transcript = report.transcript
    state = "confirmed" if transcript.confirmed else "NOT confirmed"
    lines += ["", f"Transcript ({transcript.origin}, {state}): {transcript.text}"]
    if report.accepted_warnings and report.problems():
        lines.append("\nIts warnings were accepted (`--accept-warnings`).")
    return "\n".join(lines) + "\n"
