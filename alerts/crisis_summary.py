"""What a page says about the crisis beyond its figures: what people are angry about (主要诉求),
how much weight is behind it (舆情热度, its loudest voices) and the story spreading most (最大传播).

:func:`summarize` is pure — the incident's negative mentions and the topic's baseline in, a
:class:`CrisisSummary` out; the incident manager reads the mentions when it pages and keeps the
summary on the incident (``incidents.summary``), and :func:`summary_lines` renders it for pages and
the console. Every string in it was written by strangers (terms, authors, texts): renderers escape.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from monitor.core.domain import Mention
from monitor.core.heat import mention_heat
from nlp.themes import format_themes, largest_story, themes

TOP_VOICES = 3
SNIPPET = 40


@dataclass(frozen=True)
class CrisisSummary:
    themes: tuple[tuple[str, int], ...] = ()  # (term, mentions containing it), most over-represented first
    negatives: int = 0
    heat: float = 0.0  # summed 舆情热度 of the negatives (monitor.core.heat)
    voices: tuple[tuple[str, float], ...] = ()  # (author, heat) of the loudest
    story: Mapping[str, Any] | None = None  # {"text", "author", "url", "reposts"}
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["themes"] = [list(t) for t in self.themes]
        out["voices"] = [list(v) for v in self.voices]
        return out

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | None) -> "CrisisSummary | None":
        if not doc:
            return None
        return cls(themes=tuple((str(t), int(n)) for t, n in doc.get("themes") or ()),
                   negatives=int(doc.get("negatives") or 0), heat=float(doc.get("heat") or 0.0),
                   voices=tuple((str(a), float(h)) for a, h in doc.get("voices") or ()),
                   story=doc.get("story") or None)


def summarize(negatives: Sequence[Mention], baseline: Iterable[str], *, exclude: Iterable[str] = ()) -> CrisisSummary:
    """``negatives``: the incident's negative mentions; ``baseline``: texts of the topic before it;
    ``exclude``: the topic's keywords (in every mention, so never a theme)."""
    found = themes([m.text for m in negatives], baseline, exclude=exclude)
    by_author: dict[str, float] = defaultdict(float)
    total = 0.0
    for m in negatives:
        h = mention_heat(m)
        total += h
        by_author[m.author or "匿名用户"] += h
    voices = sorted(by_author.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_VOICES]
    story = largest_story(negatives)
    spread = None
    if story is not None:
        text = " ".join(story.mention.text.split())
        spread = {"text": text if len(text) <= SNIPPET else text[:SNIPPET] + "…", "author": story.mention.author,
                  "url": story.mention.url, "reposts": story.reposts}
    return CrisisSummary(themes=tuple((t.term, t.count) for t in found), negatives=len(negatives),
                         heat=round(total, 1), voices=tuple((a, round(h, 1)) for a, h in voices), story=spread)


def summary_lines(summary: CrisisSummary | None, *, escape=lambda s: s) -> list[str]:
    """「主要诉求：…」「舆情热度：…」「最大传播：…」, strangers' words passed through ``escape``."""
    if summary is None:
        return []
    lines = []
    if summary.themes:
        lines.append(escape(format_themes([_Term(t, n) for t, n in summary.themes])))
    if summary.negatives:
        voices = " · ".join(f"{escape(a)} {h:g}" for a, h in summary.voices)
        lines.append(f"舆情热度：{summary.heat:g}（负面 {summary.negatives} 条" + (f"；影响最大：{voices}" if voices else "")
                     + "）")
    if summary.story:
        who = f" — {escape(summary.story['author'])}" if summary.story.get("author") else ""
        lines.append(f"最大传播：「{escape(summary.story['text'])}」{who}，转发 {summary.story['reposts']} 次")
    return lines


@dataclass(frozen=True)
class _Term:
    term: str
    count: int
