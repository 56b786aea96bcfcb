"""Many-phrase matching: one Aho–Corasick automaton (pyahocorasick) over every
phrase, so a text is scanned once however many thousand keywords there are.

Phrases and texts are folded the same way — full-width → ASCII, 繁→简, lower
case — so 危機 matches 危机 and ＩＰＨＯＮＥ matches iphone. A phrase that starts
or ends with an ASCII letter or digit only matches at a word boundary on that
side (``315`` is found in 「315曝光」 but not in 「23150元」, ``app`` not in
「happy」).
"""

from __future__ import annotations

from typing import Iterable

from nlp.clean import fold

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def fold_phrase(phrase: str) -> str:
    return " ".join(fold(phrase).lower().split())


def fold_text(text: str) -> str:
    return fold(text).lower()


class PhraseIndex:
    """``PhraseIndex(phrases).find(text)`` → the set of (folded) phrases present in ``text``."""

    def __init__(self, phrases: Iterable[str]):
        import ahocorasick

        self.phrases = sorted({p for p in (fold_phrase(x) for x in phrases) if p})
        self._automaton = None
        if self.phrases:
            automaton = ahocorasick.Automaton()
            for phrase in self.phrases:
                automaton.add_word(phrase, (phrase, phrase[0] in _ALNUM, phrase[-1] in _ALNUM))
            automaton.make_automaton()
            self._automaton = automaton

    def __len__(self) -> int:
        return len(self.phrases)

    def find_folded(self, folded: str) -> set[str]:
        """Phrases in an already folded text (see :func:`fold_text`)."""
        found: set[str] = set()
        if self._automaton is None or not folded:
            return found
        n = len(folded)
        for end, (phrase, check_start, check_end) in self._automaton.iter(folded):
            if check_start:
                start = end - len(phrase)
                if start >= 0 and folded[start] in _ALNUM:
                    continue
            if check_end and end + 1 < n and folded[end + 1] in _ALNUM:
                continue
            found.add(phrase)
        return found

    def find(self, text: str) -> set[str]:
        return self.find_folded(fold_text(text))

    def find_ordered(self, folded: str) -> list[str]:
        """Phrases in order of first occurrence (each once)."""
        hits = self.find_folded(folded)
        return sorted(hits, key=lambda p: (folded.find(p), -len(p)))
