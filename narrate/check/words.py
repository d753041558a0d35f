"""Words of a script and of a transcript, compared: the word error rate and which words were missed.

Both sides are reduced to the same plain words first (lower case, no punctuation, hyphens and slashes
as spaces, numbers spelled out), so that only what was heard differs, not how it is written.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*%?|[a-z]+(?:'[a-z]+)*")


def number_words(number: int) -> list[str]:
    """An integer as a speaker says it: 1204 -> one thousand two hundred four."""
    if number < 20:
        return [_ONES[number]]
    if number < 100:
        tens, ones = divmod(number, 10)
        return [_TENS[tens], *([_ONES[ones]] if ones else [])]
    for size, name in _SCALES:
        if number >= size:
            high, rest = divmod(number, size)
            return [*number_words(high), name, *(number_words(rest) if rest else [])]
    raise AssertionError("unreachable")


def plain_words(text: str) -> list[str]:
    """The words of ``text`` as a recogniser writes them."""
    text = re.sub(r"<[^>]*>", " ", text)  # SSML markup is not spoken
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    text = re.sub(r"[-/\u2013\u2014_]", " ", text)
    words: list[str] = []
    for token in _TOKEN.findall(text):
        if not token[0].isdigit():
            words.append(token)
            continue
        percent = token.endswith("%")
        whole, _, fraction = token.rstrip("%").replace(",", "").partition(".")
        words += number_words(int(whole)) if len(whole) <= 12 else list(whole)
        if fraction:
            words += ["point", *(_ONES[int(digit)] for digit in fraction)]
        if percent:
            words.append("percent")
    return words


@dataclass(frozen=True)
class WordAlignment:
    """A script's words against what was heard: the edits that turn one into the other."""

    reference: tuple[str, ...]
    heard: tuple[str, ...]
    missed: tuple[str, ...]  # script words not heard as themselves (substituted or deleted), in order
    substitutions: int
    deletions: int
    insertions: int  # heard words the script does not have

    @property
    def word_error_rate(self) -> float:
        """(substitutions + deletions + insertions) / script words; above 1 when much was invented."""
        errors = self.substitutions + self.deletions + self.insertions
        return errors / len(self.reference) if self.reference else float(bool(self.heard))

    @property
    def words_heard(self) -> float:
        """The share of the script's words heard as themselves."""
        return 1 - len(self.missed) / len(self.reference) if self.reference else 1.0


def align_words(reference: list[str], heard: list[str]) -> WordAlignment:
    """The minimum-edit (Levenshtein) alignment of two word lists."""
    rows, cols = len(reference), len(heard)
    cost = [[i + j if not i or not j else 0 for j in range(cols + 1)] for i in range(rows + 1)]
    for i in range(1, rows + 1):
        for j in range(1, cols + 1):
            same = reference[i - 1] == heard[j - 1]
            cost[i][j] = min(cost[i - 1][j] + 1, cost[i][j - 1] + 1, cost[i - 1][j - 1] + (not same))
    missed: list[str] = []
    substitutions = deletions = insertions = 0
    i, j = rows, cols
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (reference[i - 1] != heard[j - 1]):
            if reference[i - 1] != heard[j - 1]:
                missed.append(reference[i - 1])
                substitutions += 1
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            missed.append(reference[i - 1])
            deletions += 1
            i -= 1
        else:
            insertions += 1
            j -= 1
    missed.reverse()
    return WordAlignment(tuple(reference), tuple(heard), tuple(missed), substitutions, deletions, insertions)
