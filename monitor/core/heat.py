"""舆情热度: how much one mention weighs, by its reach.

A mention's heat is ``author reach × post engagement``, each log-scaled, capped at :data:`CAP`::

    reach      = 1 + log10(1 + followers) / 2
    engagement = 1 + log10(1 + reposts + comments + likes / 10)

An anonymous comment with no engagement weighs 1; a post by an account with 2 million followers and
5,000 reposts weighs about 19 — more than ten anonymous comments, far less than a hundred (a crisis is
many voices; one big account is a signal, not the whole story). Logarithms because reach is
heavy-tailed (a 50-million account is not 500 times a 100k one in what it does to a brand); the cap
because a number the platform misreports must not swamp everything. Fields a source does not give
count as 0.
"""

from __future__ import annotations

import math

CAP = 100.0


def heat(followers: int | None = None, reposts: int | None = None, comments: int | None = None,
         likes: int | None = None) -> float:
    reach = 1 + math.log10(1 + max(followers or 0, 0)) / 2
    engagement = 1 + math.log10(1 + max(reposts or 0, 0) + max(comments or 0, 0) + max(likes or 0, 0) / 10)
    return min(CAP, reach * engagement)


def mention_heat(m) -> float:
    """:func:`heat` of a :class:`~monitor.core.domain.Mention` (or anything with its reach fields)."""
    return heat(getattr(m, "author_followers", None), getattr(m, "reposts", None),
                getattr(m, "comments", None), getattr(m, "likes", None))
