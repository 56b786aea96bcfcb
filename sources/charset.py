"""Decode fetched bytes to text, whatever Chinese encoding they arrive in.

Chinese sites still serve GBK / GB2312 / GB18030 (mainland forums, government
sites) and Big5 (Taiwan, Hong Kong), often with a wrong or missing charset in
the ``Content-Type`` header. :func:`decode` tries, in order:

1. a byte-order mark (UTF-8/16/32);
2. the charset declared by the HTTP header, then the one declared inside the
   document (XML prolog ``encoding="..."`` or HTML ``<meta charset>``) — each
   only if the bytes really decode with it;
3. strict UTF-8;
4. detection by :mod:`charset_normalizer` among the encodings Chinese pages use;
5. GB18030 with replacement characters (it accepts any byte sequence).

"Decodes with" forgives one thing: an incomplete character at the very end (a
transfer cut mid-character). That tail is dropped and the rest keeps its
charset — a UTF-8 feed cut inside 中 is UTF-8 minus half a character, not a
whole document re-read as GB18030 mojibake.

GB2312 and GBK are read as GB18030, their superset, so a GBK page with a
character outside GB2312 (common: names, 𠮷) still decodes.
"""

from __future__ import annotations

import codecs
import re

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030",
              "euc-cn": "gb18030", "big5": "big5hkscs", "big5-hkscs": "big5hkscs", "ascii": "utf-8",
              "us-ascii": "utf-8", "iso-8859-1": "cp1252", "latin-1": "cp1252"}
_CANDIDATES = ("utf_8", "gb18030", "big5hkscs", "utf_16", "cp1252")
_XML_DECL = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""", re.I)
_META = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.I)


def normalise_name(name: str | None) -> str | None:
    """Python codec name for a declared charset (GBK → gb18030, …); None if unknown."""
    if not name:
        return None
    name = name.strip().strip("\"'").lower()
    name = _SUPERSETS.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def declared_in_document(body: bytes) -> str | None:
    """The charset named by an XML prolog or an HTML ``<meta>`` in the first 2 kB."""
    head = body[:2048]
    m = _XML_DECL.match(head) or _META.search(head)
    return m.group(1).decode("ascii") if m else None


def decode(body: bytes, declared: str | None = None) -> tuple[str, str]:
    """``(text, codec)`` for ``body``; ``declared`` is the HTTP header's charset."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body.decode(codec, errors="replace"), codec
    tried: list[str] = []
    for name in (declared, declared_in_document(body), "utf-8"):
        codec = normalise_name(name)
        if codec is None or codec in tried:
            continue
        tried.append(codec)
        text = decode_cut(body, codec)
        if text is not None:
            return text, codec
    detected = _detect(body)
    if detected is not None:
        text = decode_cut(body, detected)
        if text is not None:
            return text, detected
    return body.decode("gb18030", errors="replace"), "gb18030"


# The longest incomplete character a cut can leave: 3 bytes of a 4-byte UTF-8 or GB18030 sequence.
_MAX_CUT = 3


def decode_cut(body: bytes, codec: str) -> str | None:
    """``body`` decoded strictly with ``codec``, less an incomplete character at its very end; None if it does not fit.

    An incremental decoder keeps a trailing partial sequence pending instead of
    failing on it: every complete character is checked, only the cut one is dropped.
    """
    try:
        decoder = codecs.getincrementaldecoder(codec)()
        text = decoder.decode(body, final=False)
    except (UnicodeDecodeError, LookupError):
        return None
    pending = decoder.getstate()[0]
    return text if len(pending) <= _MAX_CUT else None


def _detect(body: bytes) -> str | None:
    from charset_normalizer import from_bytes

    best = from_bytes(body[:200_000], cp_isolation=list(_CANDIDATES)).best()
    return normalise_name(best.encoding) if best is not None else None
