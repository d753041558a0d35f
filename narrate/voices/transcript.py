"""The reference clip's transcript: a draft heard by the offline recogniser (PocketSphinx, English only)
for a person to confirm, or the person's own transcript of the whole recording cut to the clip by
aligning its words to the recording (PocketSphinx's forced alignment: where each word is said).

Qwen3-TTS's cloning needs the clip's exact words: a transcript with words the clip does not say (or
without some it does) makes generation run long.
"""

from __future__ import annotations

import re

import numpy as np

from narrate.check.recogniser import RECOGNISER_RATE, PocketSphinx, recogniser_pcm
from narrate.check.words import plain_words
from narrate.errors import ClipRejected

RECOGNISER = "pocketsphinx-5.1.1 en-us"
RECOGNISED_LANGUAGES = PocketSphinx.languages  # where a draft can be heard and a transcript aligned
FRAME_SECONDS = 0.01  # PocketSphinx's word times are in 10 ms frames
_ALTERNATIVE = re.compile(r"\(\d+\)$")  # "an(2)": the dictionary's second pronunciation of "an"


def draft_transcript(clip: np.ndarray, rate: int) -> str:
    """What the recogniser hears in the clip: lower-case words, no punctuation; a person confirms it."""
    return PocketSphinx().transcribe(clip, rate)


def cut_transcript(text: str, audio: np.ndarray, rate: int, start: int, end: int) -> str:
    """The words of ``text`` (the transcript of the whole recording ``audio``) said between sample
    positions ``start`` and ``end``, as written (case and punctuation kept)."""
    tokens = text.split()
    spoken = [plain_words(token) for token in tokens]
    times = _word_times(" ".join(word for words in spoken for word in words), audio, rate)
    kept: list[str] = []
    index = 0
    for token, words in zip(tokens, spoken, strict=True):
        if not words:  # a dash or other mark: goes with the word before it
            if kept and index and start <= times[index - 1] < end:
                kept.append(token)
            continue
        if start <= times[index] < end:
            kept.append(token)
        index += len(words)
    if not kept:
        raise ClipRejected("--transcript", ["none of its words are said in the chosen clip; check it is the "
                                            "transcript of this recording"])  # fmt: skip
    return " ".join(kept)


def _word_times(words: str, audio: np.ndarray, rate: int) -> list[int]:
    """The middle of each word of ``words`` in ``audio``, in its samples (forced alignment)."""
    from pocketsphinx import Decoder

    decoder = Decoder(samprate=RECOGNISER_RATE, loglevel="FATAL")
    try:
        decoder.set_align_text(words)
    except RuntimeError:
        unknown = "a word the recogniser's dictionary lacks (a name, a made-up word)"
        raise ClipRejected("--transcript", [_cannot_align(unknown)]) from None
    decoder.start_utt()
    decoder.process_raw(recogniser_pcm(audio, rate), full_utt=True)
    decoder.end_utt()
    said = [s for s in decoder.seg() if not s.word.startswith(("<", "[")) and s.word != "(NULL)"]
    wanted = words.split()
    if [_ALTERNATIVE.sub("", s.word) for s in said] != wanted:
        raise ClipRejected("--transcript", [_cannot_align("words the recording does not say")])
    return [round((s.start_frame + s.end_frame) / 2 * FRAME_SECONDS * rate) for s in said]


def _cannot_align(why: str) -> str:
    return (
        f"could not be matched to the recording ({why}); give the transcript of the chosen clip only, "
        "or trim the recording to what the transcript says"
    )
