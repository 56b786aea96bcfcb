"""Topic matching: which configured topics a mention belongs to.

A topic is an expression (:mod:`nlp.expr`; the ``keywords:`` list is shorthand
for ``k1 OR k2 …``), exclusion words (any present → no match) and optionally
the sources it applies to. Every term and exclusion word of every topic goes
into one Aho–Corasick automaton (:mod:`nlp.matching`), so a text is scanned
once; then only the topics that can match are evaluated. Matching is
case-, width- and 繁简-insensitive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from nlp.expr import Node, any_of, parse
from nlp.matching import PhraseIndex, fold_phrase, fold_text


@dataclass(frozen=True)
class Topic:
    name: str
    keywords: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    expression: str | None = None
    sources: tuple[str, ...] = ()  # empty: every source

    def node(self) -> Node:
        if self.expression:
            return parse(self.expression, fold_phrase)
        return any_of(self.keywords, fold_phrase)


def _needs_no_term(node: Node) -> bool:
    """True when the expression can be true with no term present (e.g. ``NOT 招聘``)."""
    return node.evaluate(set())


class TopicMatcher:
    def __init__(self, topics: Iterable[Topic]):
        self._topics: list[tuple[str, Node, frozenset[str], frozenset[str]]] = []
        by_term: dict[str, list[int]] = {}
        self._always: list[int] = []
        phrases: set[str] = set()
        for i, t in enumerate(topics):
            node = t.node()
            exclude = frozenset(p for p in (fold_phrase(e) for e in t.exclude) if p)
            self._topics.append((t.name, node, exclude, frozenset(t.sources)))
            terms = node.terms()
            phrases |= terms | exclude
            for term in terms:
                by_term.setdefault(term, []).append(i)
            if _needs_no_term(node):
                self._always.append(i)
        self._by_term = by_term
        self._index = PhraseIndex(phrases)

    @classmethod
    def from_config(cls, topics) -> "TopicMatcher":
        return cls(Topic(t.name, tuple(t.keywords or ()), tuple(t.exclude), getattr(t, "expression", None),
                         tuple(getattr(t, "sources", ()) or ())) for t in topics)

    def match(self, text: str, source: str | None = None) -> tuple[str, ...]:
        """Names of the topics ``text`` belongs to, in configuration order."""
        return self.match_folded(fold_text(text or ""), source)

    def match_folded(self, folded: str, source: str | None = None) -> tuple[str, ...]:
        found = self._index.find_folded(folded)
        candidates = set(self._always)
        for term in found:
            candidates.update(self._by_term.get(term, ()))
        out = []
        for i in sorted(candidates):
            name, node, exclude, sources = self._topics[i]
            if sources and source is not None and source not in sources:
                continue
            if exclude and not exclude.isdisjoint(found):
                continue
            if node.evaluate(found):
                out.append(name)
        return tuple(out)
