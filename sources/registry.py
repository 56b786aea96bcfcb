"""Source types by name. A new source type is one module and one line here."""

from monitor.core.plugins import Registry
from sources.base import Source

SOURCES: Registry[Source] = Registry(
    "source",
    "yuqing.sources",
    {
        "rss": "sources.rss:RssSource",
        "jsonl": "sources.jsonl_file:JsonlFileSource",
        "jsonfeed": "sources.jsonfeed:JsonFeedSource",
        "json_api": "sources.json_api:JsonApiSource",
        "file": "sources.file:FileSource",
        "webhook": "sources.webhook:WebhookSource",
        "hotlist": "sources.hotlist:HotlistSource",
    },
)
