"""Source types by name. A new source type is one module and one line here."""

from monitor.plugins import Registry
from sources.base import Source

SOURCES: Registry[Source] = Registry(
    "source",
    "yuqing.sources",
    {
        "rss": "sources.rss:RssSource",
        "jsonl": "sources.jsonl_file:JsonlFileSource",
    },
)
