"""Channel types by name. A new channel type is one module and one line here."""

from alerts.channels.base import Channel
from monitor.core.plugins import Registry

CHANNELS: Registry[Channel] = Registry(
    "channel",
    "yuqing.channels",
    {
        "console": "alerts.channels.console:ConsoleChannel",
        "webhook": "alerts.channels.webhook:WebhookChannel",
        "dingtalk": "alerts.channels.dingtalk:DingTalkChannel",
        "wecom": "alerts.channels.wecom:WeComChannel",
        "feishu": "alerts.channels.feishu:FeishuChannel",
        "slack": "alerts.channels.slack:SlackChannel",
        "email": "alerts.channels.email:EmailChannel",
    },
)
