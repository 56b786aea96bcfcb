"""Rule types by name. A new rule type is one module and one line here."""

from alerts.rules.base import Rule
from monitor.core.plugins import Registry

RULES: Registry[Rule] = Registry(
    "rule",
    "yuqing.rules",
    {
        "negative_spike": "alerts.rules.negative_spike:NegativeSpikeRule",
        "negative_share": "alerts.rules.negative_share:NegativeShareRule",
        "keyword": "alerts.rules.keyword:KeywordRule",
        "frequency": "alerts.rules.frequency:FrequencyRule",
        "influencer": "alerts.rules.influencer:InfluencerRule",
        "volume_drop": "alerts.rules.volume_drop:VolumeDropRule",
        "source_health": "alerts.rules.source_health:SourceHealthRule",
        "hotlist": "alerts.rules.hotlist:HotlistRule",
    },
)
