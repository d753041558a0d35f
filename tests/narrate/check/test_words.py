"""Script words against heard words: the same plain form on both sides, then a minimum-edit alignment."""

from __future__ import annotations

import pytest

from narrate.check.words import align_words, number_words, plain_words


@pytest.mark.parametrize(
    ("number", "spoken"),
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (99, "ninety nine"),
        (100, "one hundred"),
        (1204, "one thousand two hundred four"),
        (3_000_017, "three million seventeen"),
    ],
)
def test_numbers_are_spelled_as_spoken(number: int, spoken: str) -> None:
    assert " ".join(number_words(number)) == spoken


def test_plain_words_drop_punctuation_markup_and_case_and_split_compounds() -> None:
    text = "That\u2019s it: <break time='1s'/>Connect, read-only, 10% of 1,204 users in 2.5 s."
    assert plain_words(text) == [
        "that's", "it", "connect", "read", "only", "ten", "percent", "of", "one", "thousand", "two",
        "hundred", "four", "users", "in", "two", "point", "five", "s",
    ]  # fmt: skip


def words(text: str) -> list[str]:
    return text.split(" ")


def test_alignment_counts_each_kind_of_error_and_lists_the_missed_words_in_order() -> None:
    alignment = align_words(words("the cat sat on the mat"), words("the cat sat at the mat today"))
    assert (alignment.substitutions, alignment.deletions, alignment.insertions) == (1, 0, 1)
    assert alignment.missed == ("on",) and alignment.word_error_rate == pytest.approx(2 / 6)
    assert alignment.words_heard == pytest.approx(5 / 6)
    nothing = align_words(words("press share now"), [])
    assert nothing.missed == ("press", "share", "now") and nothing.word_error_rate == 1.0
    invented = align_words(["share"], words("we are all here"))
    assert invented.word_error_rate == 4.0 and invented.words_heard == 0.0
    assert align_words([], []).word_error_rate == 0.0
