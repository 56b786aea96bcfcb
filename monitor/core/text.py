"""Character tables shared by the sources' normaliser and the NLP cleaner (both strip the same
invisible characters, so a content hash and a score see the same text)."""

from __future__ import annotations

# Zero-width space / non-joiner / joiner, word joiner, BOM, soft hyphen: invisible, and used to
# dodge keyword filters (鲜\u200b丰), so they are removed everywhere text is compared.
ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
