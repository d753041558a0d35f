"""``narrate check``: does a finished render say its script? Each segment's clip is cut from the track
where the timeline puts it, recognised, and its words aligned with the script's.

A segment passes when the recogniser heard at least :data:`MIN_WORDS_HEARD` of its script's words.
That, not the word error rate, decides: the error rate also counts words the recogniser invented,
which it does in numbers for speech played backwards and sometimes for a clear voice, so the two
overlap; the share of the script heard does not. Noise, silence, another segment's words and
backwards speech fail (tests/narrate/check shows each). The result is written into the render folder.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

import soundfile as sf
from pydantic import BaseModel

from narrate.check.recogniser import PocketSphinx, Recogniser
from narrate.check.words import align_words, plain_words
from narrate.errors import ConfigError
from narrate.files import write_text_atomic
from narrate.outputs import RenderFolder

# Measured on the demo script (docs/BENCHMARKS.md, "Intelligibility"): pocketsphinx hears 23-96% of
# each segment's words from the Piper voice (three seeds), 4-33% from eSpeak's, and at most 12% from
# noise, silence, another segment's audio or a segment played backwards.
MIN_WORDS_HEARD = 0.2


class SegmentCheck(BaseModel):
    id: str
    script: str
    heard: str
    word_error_rate: float
    words_heard: float  # share of the script's words the recogniser heard as themselves
    missed: list[str]
    passed: bool


class CheckReport(BaseModel):
    """What ``narrate check`` found; written to the render folder as check.json."""

    recogniser: str
    language: str
    min_words_heard: float
    mean_word_error_rate: float
    passed: bool
    segments: list[SegmentCheck]

    @property
    def failed(self) -> list[SegmentCheck]:
        return [s for s in self.segments if not s.passed]


def check_render(
    folder: RenderFolder,
    recogniser: Recogniser | None = None,
    language: str | None = None,
    min_heard: float = MIN_WORDS_HEARD,
    on_segment: Callable[[SegmentCheck], None] = lambda _: None,
) -> CheckReport:
    """Recognise every segment of the render in ``folder``; ConfigError when it cannot be checked."""
    if not folder.has_timeline():
        raise ConfigError(f"{folder.path}: no timeline.json; is this a finished render's folder?")
    timeline = folder.timeline()
    spoken = language or timeline.language
    recogniser = recogniser or PocketSphinx()
    if spoken not in recogniser.languages:
        raise ConfigError(
            f"{folder.path}: cannot check {spoken or 'an unknown language'} speech: the offline "
            f"recogniser ({recogniser.name}) knows {', '.join(sorted(recogniser.languages))} only"
            + ("" if spoken else "; pass --language if the render is in one of those")
        )
    track, rate = sf.read(folder.file("wav"), dtype="float32", always_2d=False)
    if rate != timeline.sample_rate or len(track) != timeline.total_samples:
        raise ConfigError(f"{folder.file('wav')}: does not match timeline.json; render again")
    segments = []
    for segment in timeline.segments:
        heard = recogniser.transcribe(track[segment.start_sample : segment.end_sample], rate)
        alignment = align_words(plain_words(segment.text), plain_words(heard))
        result = SegmentCheck(
            id=segment.id,
            script=segment.text,
            heard=heard,
            word_error_rate=round(alignment.word_error_rate, 4),
            words_heard=round(alignment.words_heard, 4),
            missed=list(alignment.missed),
            passed=alignment.words_heard >= min_heard,
        )
        on_segment(result)
        segments.append(result)
    report = CheckReport(
        recogniser=recogniser.name,
        language=str(spoken),
        min_words_heard=min_heard,
        mean_word_error_rate=round(statistics.fmean(s.word_error_rate for s in segments), 4),
        passed=all(s.passed for s in segments),
        segments=segments,
    )
    write_text_atomic(folder.check_path, report.model_dump_json(indent=2) + "\n")
    return report


def load_report(path: Path) -> CheckReport:
    return CheckReport.model_validate_json(path.read_text(encoding="utf-8"))
