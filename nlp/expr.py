"""Topic expressions: ``(鲜丰奶茶 OR 鲜丰) AND (投诉 OR "食品 安全") AND NOT 招聘``.

Grammar (operators case-insensitive; NOT binds tightest, then AND, then OR)::

    expr    := and ( OR and )*
    and     := unary ( [AND] unary )*      -- juxtaposition is AND
    unary   := NOT unary | '(' expr ')' | term
    term    := a word without spaces/parentheses/quotes | "a quoted phrase" | “中文引号”

A term matches when the text contains it (see :mod:`nlp.matching` for folding).
:func:`parse` raises :class:`ExpressionError` (a ValueError) naming the position.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.core.errors import ExpressionError

OPERATORS = {"and", "or", "not"}
_QUOTES = {'"': '"', "“": "”", "「": "」"}


@dataclass(frozen=True)
class Term:
    text: str

    def evaluate(self, found: set[str]) -> bool:
        return self.text in found

    def terms(self) -> set[str]:
        return {self.text}


@dataclass(frozen=True)
class Not:
    child: "Node"

    def evaluate(self, found: set[str]) -> bool:
        return not self.child.evaluate(found)

    def terms(self) -> set[str]:
        return self.child.terms()


@dataclass(frozen=True)
class All:
    children: tuple["Node", ...]

    def evaluate(self, found: set[str]) -> bool:
        return all(c.evaluate(found) for c in self.children)

    def terms(self) -> set[str]:
        return set().union(*(c.terms() for c in self.children))


@dataclass(frozen=True)
class Any_:
    children: tuple["Node", ...]

    def evaluate(self, found: set[str]) -> bool:
        return any(c.evaluate(found) for c in self.children)

    def terms(self) -> set[str]:
        return set().union(*(c.terms() for c in self.children))


Node = Term | Not | All | Any_


def _tokens(source: str) -> list[tuple[str, str, int]]:
    """(kind, value, position): kind is '(' ')' 'op' or 'term'."""
    out: list[tuple[str, str, int]] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch.isspace():
            i += 1
        elif ch in "()（）":
            out.append(("(" if ch in "(（" else ")", ch, i))
            i += 1
        elif ch in _QUOTES:
            close = source.find(_QUOTES[ch], i + 1)
            if close < 0:
                raise ExpressionError(f"unclosed quote at position {i + 1}")
            phrase = " ".join(source[i + 1:close].split())
            if not phrase:
                raise ExpressionError(f"empty quoted phrase at position {i + 1}")
            out.append(("term", phrase, i))
            i = close + 1
        else:
            j = i
            while j < n and not source[j].isspace() and source[j] not in "()（）" and source[j] not in _QUOTES:
                j += 1
            word = source[i:j]
            out.append(("op", word.lower(), i) if word.lower() in OPERATORS else ("term", word, i))
            i = j
    return out


class _Parser:
    def __init__(self, source: str, normalise):
        self.tokens = _tokens(source)
        self.pos = 0
        self.normalise = normalise

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self):
        tok = self.peek()
        self.pos += 1
        return tok

    def expr(self) -> Node:
        children = [self.conj()]
        while (tok := self.peek()) and tok[:2] == ("op", "or"):
            self.take()
            children.append(self.conj())
        return children[0] if len(children) == 1 else Any_(tuple(children))

    def conj(self) -> Node:
        children = [self.unary()]
        while (tok := self.peek()) and (tok[0] in ("term", "(") or tok[:2] in (("op", "and"), ("op", "not"))):
            if tok[:2] == ("op", "and"):
                self.take()
            children.append(self.unary())
        return children[0] if len(children) == 1 else All(tuple(children))

    def unary(self) -> Node:
        tok = self.take()
        if tok is None:
            raise ExpressionError("expression ends where a word, NOT or '(' was expected")
        kind, value, at = tok
        if kind == "op" and value == "not":
            return Not(self.unary())
        if kind == "(":
            node = self.expr()
            close = self.take()
            if close is None or close[0] != ")":
                raise ExpressionError(f"missing ')' for '(' at position {at + 1}")
            return node
        if kind == "term":
            text = self.normalise(value)
            if not text:
                raise ExpressionError(f"empty word at position {at + 1}")
            return Term(text)
        raise ExpressionError(f"unexpected {value.upper() if kind == 'op' else value!r} at position {at + 1}")


def parse(source: str, normalise=lambda s: s) -> Node:
    """Parse an expression; ``normalise`` is applied to every term (e.g. folding)."""
    if not source or not source.strip():
        raise ExpressionError("empty expression")
    parser = _Parser(source, normalise)
    node = parser.expr()
    rest = parser.peek()
    if rest is not None:
        raise ExpressionError(f"unexpected {rest[1]!r} at position {rest[2] + 1}")
    return node


def any_of(words, normalise=lambda s: s) -> Node:
    """The expression ``w1 OR w2 OR …`` (the ``keywords:`` list form)."""
    terms = tuple(Term(t) for t in dict.fromkeys(normalise(w) for w in words) if t)
    if not terms:
        raise ExpressionError("no keywords")
    return terms[0] if len(terms) == 1 else Any_(terms)
