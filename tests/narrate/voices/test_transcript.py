"""The clip's transcript: the recogniser's draft, confirmed or corrected by a person at the terminal, or
left unconfirmed when no one is there to ask."""

from __future__ import annotations

import numpy as np

from narrate.testing.memo import RATE
from narrate.voices.add import choose_transcript, prepare_clip
from narrate.voices.decode import Recording
from narrate.voices.window import ClipBounds
from tests.narrate.voices.memos import lay_out, spoken_sentences


def test_the_draft_is_confirmed_at_the_terminal_corrected_there_or_left_unconfirmed() -> None:
    laid = lay_out(list(spoken_sentences()[1:]), [0.5] * 4)
    recording = Recording(laid.audio.astype(np.float32), "pcm_f32le", "wav", 1, RATE)
    clip = prepare_clip(recording, "memo.wav", ClipBounds())
    shown: list[str] = []

    def keep(draft: str) -> str:
        shown.append(draft)
        return ""

    kept = choose_transcript(clip, None, keep)
    assert kept.confirmed and kept.text == shown[0] and kept.origin == "recogniser draft, confirmed"
    heard = set(shown[0].split())
    assert len(heard & {"reading", "sentences", "product", "tables", "team", "today"}) >= 4  # it hears speech
    typed = choose_transcript(clip, None, lambda draft: "  The exact   words. ")
    assert (typed.text, typed.origin, typed.confirmed) == ("The exact words.", "typed", True)
    alone = choose_transcript(clip, None, None)
    assert (alone.text, alone.confirmed) == (shown[0], False)
