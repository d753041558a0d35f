"""Captions parse back as valid SRT and WebVTT, split long segments at sentences, and keep time."""

from __future__ import annotations

import itertools
import re

from narrate.track.captions import Cue, segment_cues, split_caption_text, to_srt, to_vtt

RATE = 24000
SRT_TIME = r"(\d\d):(\d\d):(\d\d),(\d\d\d)"
VTT_TIME = SRT_TIME.replace(",", r"\.")


def _ms(match: tuple[str, ...]) -> int:
    h, m, s, ms = (int(x) for x in match)
    return ((h * 60 + m) * 60 + s) * 1000 + ms


def parse_srt(text: str) -> list[tuple[int, int, int, str]]:
    cues = []
    for block in text.strip().split("\n\n"):
        index, timing, *lines = block.split("\n")
        start, end = (
            re.fullmatch(f"{SRT_TIME} --> {SRT_TIME}", timing).groups()[:4],
            re.fullmatch(  # type: ignore[union-attr]
                f"{SRT_TIME} --> {SRT_TIME}", timing
            ).groups()[4:],
        )
        cues.append((int(index), _ms(start), _ms(end), "\n".join(lines)))
    return cues


def parse_vtt(text: str) -> list[tuple[int, int, str]]:
    header, *blocks = text.strip().split("\n\n")
    assert header == "WEBVTT"
    cues = []
    for block in blocks:
        timing, *lines = block.split("\n")
        groups = re.fullmatch(f"{VTT_TIME} --> {VTT_TIME}", timing).groups()  # type: ignore[union-attr]
        cues.append((_ms(groups[:4]), _ms(groups[4:]), "\n".join(lines)))
    return cues


def test_long_text_splits_at_sentences_within_the_limit() -> None:
    text = "First sentence is here. Second one follows it closely! Is this the third? Yes."
    pieces = split_caption_text(text, 40)
    assert all(len(p) <= 40 for p in pieces)
    assert " ".join(pieces) == text
    assert pieces[0] == "First sentence is here."


def test_unbroken_text_is_wrapped_at_words() -> None:
    pieces = split_caption_text("word " * 50, 30)
    assert all(len(p) <= 30 for p in pieces) and " ".join(pieces) == ("word " * 50).strip()


def test_cues_cover_the_clip_in_order() -> None:
    cues = segment_cues("One two. Three four five six seven.", 48000, 96000, 12)
    assert cues[0].start_sample == 48000 and cues[-1].end_sample == 96000
    assert all(a.end_sample == b.start_sample for a, b in itertools.pairwise(cues))


def test_srt_and_vtt_round_trip() -> None:
    cues = [
        Cue(0, 36000, "Hello & welcome."),
        Cue(36000, 3 * 3600 * RATE + 12, "Later <b>."),
    ]
    srt = parse_srt(to_srt(cues, RATE))
    assert srt == [(1, 0, 1500, "Hello & welcome."), (2, 1500, 3 * 3600 * 1000, "Later <b>.")]
    vtt = parse_vtt(to_vtt(cues, RATE))
    assert vtt == [(0, 1500, "Hello &amp; welcome."), (1500, 3 * 3600 * 1000, "Later &lt;b&gt;.")]
