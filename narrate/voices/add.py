"""``narrate voice add`` and ``narrate voice confirm`` without the terminal: a recording made into a
checked reference clip (:func:`prepare_clip`), refused or accepted (:func:`refuse_problems`), and the
clip, its consent record, its report and the voice entry written together (:func:`write_voice`):
staged first, then moved into place, the voices file last, so a refusal or a failure leaves nothing
half-written.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import soundfile as sf

from narrate.consent import create_consent
from narrate.errors import ClipRejected, ConfigError
from narrate.voices.checks import Measured, check_clip, clipped_peaks
from narrate.voices.decode import REFERENCE_RATE, Recording
from narrate.voices.entry import VoicesTarget
from narrate.voices.report import (
    ClipCheck,
    ClipReport,
    CutInfo,
    SourceInfo,
    TranscriptInfo,
    Verdict,
    clip_report_path,
    load_clip_report,
)
from narrate.voices.speech import map_speech
from narrate.voices.transcript import RECOGNISER, cut_transcript, draft_transcript
from narrate.voices.window import REFERENCE_LUFS, ClipBounds, choose_window, cut_clip, whole_window


@dataclass(frozen=True)
class PreparedClip:
    """The clip cut from a recording, and what its checks found (nothing written yet)."""

    recording: Recording
    source: str  # the recording's file name
    samples: np.ndarray  # the clip: mono float32 at REFERENCE_RATE, trimmed, faded, normalised
    checks: list[ClipCheck]
    cut: CutInfo
    whole: bool  # the clip holds all the recording's speech (a transcript of it needs no cutting)
    window_start: int  # where the clip was cut from the recording, in its samples
    window_end: int


@dataclass(frozen=True)
class Consent:
    speaker: str
    scope: str
    granted_on: date
    expires_on: date | None = None
    evidence: str | None = None


@dataclass(frozen=True)
class WrittenVoice:
    clip: Path
    consent: Path
    report: Path
    voices_file: Path


def prepare_clip(recording: Recording, source: str, bounds: ClipBounds, whole: bool = False) -> PreparedClip:
    """The best window of ``recording`` (all its speech when ``whole``), checked and cut."""
    audio, rate = recording.samples, REFERENCE_RATE
    speech = map_speech(audio, rate)
    clipped_at = clipped_peaks(audio)
    try:
        window = whole_window(speech) if whole else choose_window(speech, bounds, clipped_at)
    except ClipRejected as exc:
        raise ClipRejected(source, exc.problems) from None
    checks = check_clip(Measured(audio, speech, window, bounds), clipped_at)
    samples = cut_clip(audio, window, rate)
    cut = CutInfo(
        start_seconds=round(window.start / rate, 3),
        end_seconds=round(window.end / rate, 3),
        clip_seconds=round(len(samples) / rate, 3),
        shortened_pauses=[round((end - start) / rate, 2) for start, end in window.long_pauses],
        loudness_lufs=REFERENCE_LUFS,
    )
    covers_all = window.first == 0 and window.last == len(speech.phrases) - 1
    return PreparedClip(recording, source, samples, checks, cut, covers_all, window.start, window.end)


def refuse_problems(prepared: PreparedClip, accept_warnings: bool) -> None:
    """ClipRejected with what to do for each failed check, and each warning unless accepted."""
    refused = [
        c
        for c in prepared.checks
        if c.verdict is Verdict.FAIL or (not accept_warnings and c.verdict is Verdict.WARN)
    ]
    if not refused:
        return
    lines = [f"{c.name}: {c.advice}" for c in refused]
    if all(c.verdict is Verdict.WARN for c in refused):
        lines.append("or keep this clip as it is with --accept-warnings")
    raise ClipRejected(prepared.source, lines)


def choose_transcript(
    prepared: PreparedClip, given: str | None, ask: Callable[[str], str] | None
) -> TranscriptInfo:
    """``given`` (cut to the clip when the clip is a part of the recording), else the recogniser's
    draft: shown through ``ask`` (which returns the exact words, or nothing to keep the draft) and so
    confirmed, or unconfirmed when there is no one to ask."""
    if given is not None:
        text = " ".join(given.split())
        if not text:
            raise ClipRejected("--transcript", ["is empty; write the exact words of the recording"])
        if prepared.whole:
            return TranscriptInfo(text=text, origin="given", confirmed=True)
        audio = prepared.recording.samples
        cut = cut_transcript(text, audio, REFERENCE_RATE, prepared.window_start, prepared.window_end)
        return TranscriptInfo(
            text=cut, origin="given, cut to the clip", confirmed=True, recogniser=RECOGNISER
        )
    draft = draft_transcript(prepared.samples, REFERENCE_RATE)
    if ask is None:
        return TranscriptInfo(text=draft, origin="recogniser draft", confirmed=False, recogniser=RECOGNISER)
    typed = " ".join(ask(draft).split())
    origin = "typed" if typed else "recogniser draft, confirmed"
    return TranscriptInfo(text=typed or draft, origin=origin, confirmed=True, recogniser=RECOGNISER)


def clip_report(
    name: str, prepared: PreparedClip, transcript: TranscriptInfo, accepted_warnings: bool
) -> ClipReport:
    recording = prepared.recording
    source = SourceInfo(
        file=prepared.source, container=recording.container, codec=recording.codec,
        channels=recording.channels, sample_rate=recording.source_rate, seconds=round(recording.seconds, 3),
    )  # fmt: skip
    return ClipReport(
        voice=name,
        source=source,
        cut=prepared.cut,
        checks=prepared.checks,
        accepted_warnings=accepted_warnings,
        transcript=transcript,
        clip_sha256="",
    )  # fmt: skip  (write_voice sets it once the clip's bytes exist)


def voice_entry(name: str, language: str, transcript: TranscriptInfo) -> dict[str, object]:
    """The voice as the voices file holds it (its paths relative to that file)."""
    entry: dict[str, object] = {
        "engine": "qwen-clone",
        "language": language,
        "reference_clip": f"voices/{name}.wav",
        "reference_text": transcript.text,
        "consent": f"voices/{name}.consent.json",
    }
    if not transcript.confirmed:
        entry["transcript_confirmed"] = False  # script validation refuses it until `narrate voice confirm`
    return entry


def clip_wav(samples: np.ndarray) -> bytes:
    """The reference clip's file: 16-bit PCM WAV, mono, 24 kHz (the bytes the consent hashes)."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(samples, -1.0, 1.0), REFERENCE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def write_voice(
    target: VoicesTarget, name: str, language: str, clip: bytes, report: ClipReport, consent: Consent
) -> WrittenVoice:
    """Write the clip, its consent record, its report and the voice entry in one step."""
    if name in target.voices():
        raise ConfigError(
            f"voice {name!r} is already in {target.file}; choose another name or remove it first"
        )
    folder = target.folder
    clip_path, consent_path = folder / f"{name}.wav", folder / f"{name}.consent.json"
    report_path = clip_report_path(clip_path)
    taken = [p for p in (clip_path, consent_path, report_path) if p.exists()]
    if taken:
        raise ConfigError(
            f"{', '.join(map(str, taken))} already exist(s); remove them or choose another name"
        )
    voices_text = target.with_entry(name, voice_entry(name, language, report.transcript))
    folder.mkdir(parents=True, exist_ok=True)
    with _staged() as stage:
        staged_clip = stage(clip_path, clip)
        record = create_consent(staged_clip, consent.speaker, consent.scope, consent.granted_on,
                                consent.expires_on, consent.evidence)  # fmt: skip
        stage(consent_path, (record.model_dump_json(indent=2) + "\n").encode())
        final = report.model_copy(update={"clip_sha256": record.reference_sha256})
        stage(report_path, (final.model_dump_json(indent=2) + "\n").encode())
        stage(target.file, voices_text.encode())  # last: the voice exists once its entry does
    return WrittenVoice(clip_path, consent_path, report_path, target.file)


def confirm_voice(target: VoicesTarget, name: str, transcript: str | None) -> str:
    """Mark a voice's transcript confirmed (``transcript`` in place of the draft, when given);
    returns the confirmed text."""
    entry = target.voices().get(name)
    if not isinstance(entry, dict) or entry.get("engine") != "qwen-clone":
        raise ConfigError(f"no cloned voice {name!r} in {target.file}; give the file that defines it")
    text = " ".join((transcript or str(entry.get("reference_text") or "")).split())
    if not text:
        raise ConfigError(f'voice {name!r} has no transcript to confirm; give --transcript "the exact words"')
    entry = {**entry, "reference_text": text}
    entry.pop("transcript_confirmed", None)
    clip = Path(str(entry.get("reference_clip", "")))
    clip = clip if clip.is_absolute() else target.file.parent / clip
    report = load_clip_report(clip)
    with _staged() as stage:
        if report is not None:
            origin = "typed" if transcript else report.transcript.origin + ", confirmed"
            confirmed = replace_transcript(report, text, origin)
            stage(clip_report_path(clip), (confirmed.model_dump_json(indent=2) + "\n").encode())
        stage(target.file, target.with_entry(name, entry).encode())
    return text


def replace_transcript(report: ClipReport, text: str, origin: str) -> ClipReport:
    transcript = TranscriptInfo(
        text=text, origin=origin, confirmed=True, recogniser=report.transcript.recogniser
    )
    return report.with_transcript(transcript)


@contextmanager
def _staged() -> Iterator[Callable[[Path, bytes], Path]]:
    """Files written to temporary siblings first and moved into place together at the end; on any
    failure the staged files are removed and those already moved are put back as they were."""
    staged: list[tuple[Path, Path]] = []

    def stage(path: Path, data: bytes) -> Path:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(name, 0o644)
        staged.append((Path(name), path))
        return Path(name)

    placed: list[tuple[Path, bytes | None]] = []
    try:
        yield stage
        for temporary, path in staged:
            placed.append((path, path.read_bytes() if path.is_file() else None))
            os.replace(temporary, path)
    except BaseException:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        for path, before in reversed(placed):
            with suppress(OSError):
                path.write_bytes(before) if before is not None else path.unlink(missing_ok=True)
        raise
