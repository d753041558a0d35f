"""The pronunciation lexicon: whole-word respellings applied to what every engine is asked to say.

``pronunciations:`` in a script (or a shared file it names) maps a word to how it is said
(``Acme: Ack-mee``, ``SQL: sequel``). The respelling replaces the word in the text each engine
speaks; for an Amazon Polly voice it becomes SSML ``<sub alias="...">word</sub>``, so Polly bills and
limits the written word. Captions always show the script's own words. A key of two or more capitals
(an acronym, ``GitHub``) matches only as written; any other key matches in any case. Entries are
applied in one pass, so a respelling is never respelled again, and a respelling that contains another
entry's word is refused, since its meaning would depend on that order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from xml.sax.saxutils import escape, quoteattr

from num2words import CONVERTER_CLASSES, num2words

# The script's language -> num2words' code; num2words speaks no Chinese.
NUMBER_LANGUAGES = {
    "english": "en", "auto": "en", "french": "fr", "german": "de", "italian": "it", "japanese": "ja",
    "korean": "ko", "portuguese": "pt", "russian": "ru", "spanish": "es",
}  # fmt: skip
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)?)(%?)(?![\w])")
_TAG = re.compile(r"(<[^>]*>)")
_ACRONYM = re.compile(r"\b[A-Z][A-Z0-9]*[A-Z][A-Z0-9]*s?\b")
_DIGIT_IN_WORD = re.compile(r"\b(?=\w*[A-Za-z])(?=\w*\d)\w+\b")
_CAMEL_CASE = re.compile(r"\b[A-Za-z][a-z]+[A-Z][A-Za-z]*\b")
_KEY = re.compile(r"^[\w][\w.'+&-]*(?: [\w][\w.'+&-]*)*$")


def exact_case(key: str) -> bool:
    """Keys with two or more capitals (SQL, GitHub) match only as written; others in any case."""
    return sum(ch.isupper() for ch in key) >= 2


@dataclass(frozen=True)
class Lexicon:
    entries: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, mapping: Mapping[str, str]) -> Lexicon:
        return cls(tuple(sorted(mapping.items(), key=lambda item: (-len(item[0]), item[0]))))

    def __bool__(self) -> bool:
        return bool(self.entries)

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        if not self.entries:
            return None
        alternatives = [
            re.escape(key) if exact_case(key) else f"(?i:{re.escape(key)})" for key, _ in self.entries
        ]
        return re.compile(r"(?<![\w-])(?:" + "|".join(alternatives) + r")(?![\w-])")

    def respelling(self, word: str) -> str:
        for key, value in self.entries:
            if word == key or (not exact_case(key) and word.lower() == key.lower()):
                return value
        raise KeyError(word)

    def apply(self, text: str) -> str:
        """``text`` with every entry's word respelt (plain text)."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self.respelling(m.group(0)), text)

    def apply_ssml(self, text: str, is_ssml: bool) -> str:
        """``text`` as SSML with each entry's word in ``<sub alias>``; markup already there is kept."""
        if self._pattern is None:
            return text
        parts = _TAG.split(text) if is_ssml else [escape(text)]
        pattern = self._pattern
        spoken = [
            part if part.startswith("<") else pattern.sub(lambda m: _sub(m.group(0), self), part)
            for part in parts
        ]
        return "".join(spoken)

    def matches(self, text: str) -> bool:
        return self._pattern is not None and self._pattern.search(text) is not None

    def covers(self, word: str) -> bool:
        try:
            self.respelling(word)
        except KeyError:
            return False
        return True


def _sub(word: str, lexicon: Lexicon) -> str:
    return f"<sub alias={quoteattr(lexicon.respelling(word))}>{word}</sub>"


def lexicon_problems(mapping: Mapping[str, str]) -> list[str]:
    """Each entry that cannot be used: an empty or odd key or respelling, or one that feeds another."""
    problems = []
    lexicon = Lexicon.of(mapping)
    for key, value in mapping.items():
        if not _KEY.match(key):
            problems.append(f"{key!r}: a key is a word or words (letters, digits, ' . + & -); fix it")
        elif not value.strip():
            problems.append(f"{key}: the respelling is empty; write how the word is said")
        elif lexicon.matches(value):
            fed = lexicon._pattern.search(value).group(0)  # type: ignore[union-attr]
            problems.append(
                f"{key}: its respelling {value!r} contains {fed!r}, which has an entry of its own; entries "
                "that feed each other are refused: write the respelling with words that have no entry"
            )
    return problems


def spell_numbers(text: str, language: str | None) -> str:
    """Numbers (and percentages) as words in ``language``; ValueError when num2words lacks it."""
    code = NUMBER_LANGUAGES.get(language or "")
    if code is None or code not in CONVERTER_CLASSES:
        raise ValueError(
            f"spell_numbers: no number words for {language or 'an unknown language'}; write the numbers "
            "as words, or set spell_numbers: false"
        )

    def words(match: re.Match[str]) -> str:
        number, percent = match.group(1), match.group(2)
        value: float | int = float(number.replace(",", ".")) if re.search(r"[.,]", number) else int(number)
        spoken = num2words(value, lang=code)
        return f"{spoken} {_PERCENT.get(code, 'percent')}" if percent else spoken

    return _NUMBER.sub(words, text)


_PERCENT = {"en": "percent", "fr": "pour cent", "de": "Prozent", "it": "per cento", "es": "por ciento",
            "pt": "por cento", "ru": "процентов", "ja": "パーセント", "ko": "퍼센트"}  # fmt: skip


def words_to_check(text: str, lexicon: Lexicon) -> list[str]:
    """Words that look as if an engine may say them wrong (acronyms, digits inside words, camelCase)
    and have no entry: what ``narrate validate`` warns about."""
    found: dict[str, None] = {}
    plain = re.sub(r"<[^>]*>", " ", text)
    for pattern in (_ACRONYM, _DIGIT_IN_WORD, _CAMEL_CASE):
        for match in pattern.finditer(plain):
            word = match.group(0)
            if not lexicon.covers(word) and not (word.endswith("s") and lexicon.covers(word[:-1])):
                found.setdefault(word)
    return list(found)
