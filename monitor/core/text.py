"""Text rules shared across layers: the invisible characters the sources' normaliser and the NLP cleaner both
strip (so a content hash and a score see the same text), and what of a stranger's text may become a link."""

from __future__ import annotations

from urllib.parse import urlsplit

# Zero-width space / non-joiner / joiner, word joiner, BOM, soft hyphen: invisible, and used to
# dodge keyword filters (鲜\u200b丰), so they are removed everywhere text is compared.
ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)


def http_url(url: object) -> str:
    """``url`` when it is an absolute http(s) URL with a host, else "" — the only links ever rendered from what
    strangers wrote (``javascript:``, ``data:``, relative paths … are shown as text or not at all)."""
    text = str(url or "").strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    return text if parts.scheme in ("http", "https") and parts.netloc else ""


# Markdown's link brackets in stranger-written text become full-width look-alikes, so a post reading
# "[确认处理](https://evil.example)" shows as text in a chat robot's Markdown, never as a link. (Channels
# whose format gives < > & a meaning escape those themselves.)
_MARKDOWN_INERT = str.maketrans({"[": "［", "]": "］"})


def markdown_inert(text: str) -> str:
    return text.translate(_MARKDOWN_INERT)


def markdown_link_target(url: str) -> str:
    """An http(s) URL made safe as a Markdown link destination (no way out of the parentheses)."""
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("<", "%3C").replace(">", "%3E")
