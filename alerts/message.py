"""Chinese alert texts shared by the channels (Markdown, readable as plain text).

A message is a headline plus blocks — facts (incident, topic, rule, time, why,
the numbers: current vs baseline), the most negative mentions (text, score,
author, link), the response plan's first steps, and how to acknowledge.
Channels render the blocks as they need (one Markdown text, card elements,
Slack sections, a mail body).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from alerts.alert import Alert
from alerts.rules.measurements import describe_numbers

HEADLINES = {"firing": "舆情告警", "escalated": "舆情升级", "reminder": "未确认提醒", "reopened": "事件重开",
             "resolved": "已恢复"}
SNIPPET = 60
PLAN_STEPS = 3  # plan steps shown in a page (already numbered); the rest are in `monitor incidents show`


def headline(alert: Alert) -> str:
    return f"【{HEADLINES.get(alert.kind, alert.kind)}】{alert.severity.display} · {alert.title}"


def local_time(alert: Alert) -> str:
    return alert.at.astimezone(ZoneInfo(alert.tz)).strftime("%Y-%m-%d %H:%M:%S")


def figures(alert: Alert) -> list[str]:
    """``label value`` for each figure worth showing (labels and order: :mod:`alerts.rules.measurements`)."""
    return [f"{label} {value}" for label, value in describe_numbers(alert.numbers)]


def fact_lines(alert: Alert) -> list[str]:
    lines = [f"- 事件编号：#{alert.incident_id}", f"- 话题：{alert.topic}",
             f"- 规则：{alert.rule}", f"- 时间：{local_time(alert)}（{alert.tz}）", f"- 原因：{alert.reason}"]
    numbers = figures(alert)
    if numbers:
        lines.append("- 数据：" + "；".join(numbers))
    return lines


def mention_lines(alert: Alert) -> list[str]:
    if not alert.top_mentions or alert.kind == "resolved":
        return []
    lines = ["**代表性负面内容：**"]
    for i, m in enumerate(alert.top_mentions, 1):
        text = m.text if len(m.text) <= SNIPPET else m.text[:SNIPPET] + "…"
        score = f"{m.score:.2f}" if m.score is not None else "-"
        who = f" — {m.author}" if m.author else ""
        link = f" [原文]({m.url})" if m.url else ""
        lines.append(f"{i}. {text}（情感 {score}{who}）{link}")
    return lines


def plan_lines(alert: Alert) -> list[str]:
    if not alert.plan_steps or alert.kind == "resolved":
        return []
    lines = ["**应急预案·待办步骤：**", *alert.plan_steps[:PLAN_STEPS]]  # each "N. title（owner，HH:MM前）"
    lines.append(f"完整预案：`monitor incidents show {alert.incident_id}`")
    return lines


def ack_line(alert: Alert) -> str:
    if alert.kind == "resolved" or not alert.ack_command:
        return ""
    return f"确认处理：`{alert.ack_command}`"


def blocks(alert: Alert) -> list[str]:
    """The message body as Markdown blocks (facts, mentions, plan, ack), empty ones left out."""
    parts = [fact_lines(alert), mention_lines(alert), plan_lines(alert), [ack_line(alert)]]
    return ["\n".join(lines) for lines in parts if any(lines)]


def render_markdown(alert: Alert, *, heading: bool = True) -> str:
    head = [f"### {headline(alert)}"] if heading else []
    return "\n\n".join(head + blocks(alert))
