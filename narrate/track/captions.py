"""SRT and WebVTT captions from the timeline: one cue per sentence group, timed in samples."""

from __future__ import annotations

import re
from dataclasses import dataclass

from narrate.script import normalize_text

_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:，；：])\s+")


@dataclass(frozen=True)
class Cue:
    start_sample: int
    end_sample: int
    text: str


def split_caption_text(text: str, max_chars: int) -> list[str]:
    """Pieces of at most ``max_chars``, split at sentences, then clauses, then words."""
    text = normalize_text(text)
    if len(text) <= max_chars:
        return [text]
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        for clause in [sentence] if len(sentence) <= max_chars else _CLAUSE_END.split(sentence):
            pieces.extend([clause] if len(clause) <= max_chars else _wrap_words(clause, max_chars))
    return _merge(pieces, max_chars)


def _wrap_words(text: str, max_chars: int) -> list[str]:
    lines: list[str] = []
    for word in text.split(" "):
        while len(word) > max_chars:  # one unbroken run longer than a cue
            lines.append(word[:max_chars])
            word = word[max_chars:]
        if lines and len(lines[-1]) + 1 + len(word) <= max_chars:
            lines[-1] += " " + word
        elif word:
            lines.append(word)
    return lines


def _merge(pieces: list[str], max_chars: int) -> list[str]:
    merged: list[str] = []
    for piece in pieces:
        if merged and len(merged[-1]) + 1 + len(piece) <= max_chars:
            merged[-1] += " " + piece
        else:
            merged.append(piece)
    return merged


def segment_cues(text: str, start_sample: int, end_sample: int, max_chars: int) -> list[Cue]:
    """Cues covering the spoken clip, each given time in proportion to its characters."""
    pieces = split_caption_text(text, max_chars)
    total_chars = sum(len(p) for p in pieces)
    span = end_sample - start_sample
    cues: list[Cue] = []
    chars_before = 0
    for piece in pieces:
        cue_start = start_sample + span * chars_before // total_chars
        chars_before += len(piece)
        cue_end = start_sample + span * chars_before // total_chars
        cues.append(Cue(cue_start, cue_end, piece))
    return cues


def _timestamp(sample: int, sample_rate: int, separator: str) -> str:
    millis = sample * 1000 // sample_rate
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def to_srt(cues: list[Cue], sample_rate: int) -> str:
    blocks = [
        f"{index}\n{_timestamp(c.start_sample, sample_rate, ',')} --> "
        f"{_timestamp(c.end_sample, sample_rate, ',')}\n{c.text}\n"
        for index, c in enumerate(cues, start=1)
    ]
    return "\n".join(blocks)


def to_vtt(cues: list[Cue], sample_rate: int, note: str | None = None) -> str:
    blocks = [
        f"{_timestamp(c.start_sample, sample_rate, '.')} --> {_timestamp(c.end_sample, sample_rate, '.')}\n"
        f"{_vtt_escape(c.text)}\n"
        for c in cues
    ]
    header = "WEBVTT\n\n" + (f"NOTE {' '.join(note.replace('-->', '->').split())}\n\n" if note else "")
    return header + "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
