"""Vet a feed document before feedparser reads it: no entity is ever expanded, cut-off entries are found.

One pass of defusedxml's expat reader over the whole document:

- **Entities.** Any entity declaration — general or parameter, internal or
  external (``SYSTEM "file:///etc/passwd"``), wherever the DOCTYPE puts it
  (after a long comment, with a ``]`` inside a comment of its internal subset) —
  refuses the document. Expat reads the DOCTYPE as XML: no comment fools it as
  it fooled a regex. What expat cannot vet (text after a well-formedness error,
  comments, CDATA) may still contain the characters ``<!ENTITY``; feedparser's
  own regex would pick those up and expand them, so they are escaped before
  feedparser sees the document. The DTD a DOCTYPE names is never fetched.
- **Truncation.** A document that is well-formed until it simply stops (the
  transfer was cut) ends inside an element. If that element is an ``<item>`` /
  ``<entry>``, the entries closed before it are complete and the open one is not:
  :func:`vet` says how many are complete so the caller keeps only those.

A document malformed in the middle (a stray ``&``, HTML) is not truncated: it
is left to feedparser's lenient parser as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax import SAXParseException
from xml.sax.handler import ContentHandler, feature_external_ges


from monitor.core.errors import ParseError

ENTRY_ELEMENTS = frozenset({"item", "entry"})  # RSS 0.9x/1.0/2.0 and Atom
_ENTITY_DECL = b"<!ENTITY"


@dataclass(frozen=True)
class Vetted:
    data: bytes  # the document to parse, with any ``<!ENTITY`` text escaped
    complete_entries: int | None  # cut inside an entry: how many entries before it are complete; else None


class _Entries(ContentHandler):
    """Counts top-level item/entry elements as they close (qualified names: namespaces off)."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = 0
        self.depth = 0  # > 0 while inside an entry

    def startElement(self, name: str, attrs) -> None:  # noqa: N802 - SAX API
        if name.rpartition(":")[2] in ENTRY_ELEMENTS:
            self.depth += 1

    def endElement(self, name: str) -> None:  # noqa: N802 - SAX API
        if self.depth and name.rpartition(":")[2] in ENTRY_ELEMENTS:
            self.depth -= 1
            if not self.depth:
                self.closed += 1


def create_parser() -> "DefusedExpatParser":  # noqa: F821 - imported in the body
    """An expat SAX reader that raises on any entity declaration and never reads anything external.

    A DOCTYPE naming an external DTD (old RSS 0.91 feeds: Netscape's) is fine:
    the DTD is skipped, not fetched (external general entities off). Also the
    SAX driver feedparser is given (:mod:`sources.rss`): ``xml.sax.make_parser``
    calls this module's ``create_parser``.
    """
    from defusedxml.expatreader import DefusedExpatParser  # here: a config load need not import the XML stack

    parser = DefusedExpatParser(forbid_external=False)  # declarations are refused; the DTD itself is skipped
    parser.setFeature(feature_external_ges, False)
    return parser


def vet(source_name: str, data: bytes) -> Vetted:
    """Check ``data`` (an XML document); :class:`ParseError` if it declares an entity."""
    from defusedxml.common import DefusedXmlException

    parser = create_parser()
    entries = _Entries()
    parser.setContentHandler(entries)
    truncated = False
    try:
        parser.feed(data)  # not final: a document that just stops is no error yet
        try:
            parser.close()
        except SAXParseException:
            truncated = True  # well-formed up to its end, which came too early
    except DefusedXmlException as exc:
        name = getattr(exc, "name", None)
        raise ParseError(source_name, "refused: the document type declares XML entities "
                                      f"({name!r}: a possible entity-expansion bomb)") from None
    except (SAXParseException, ValueError):
        pass  # malformed before its end (or a charset expat lacks): left to feedparser's lenient parser
    complete = entries.closed if truncated and entries.depth else None
    return Vetted(data.replace(_ENTITY_DECL, b"&lt;!ENTITY"), complete)
