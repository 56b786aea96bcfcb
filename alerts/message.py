"""Chinese alert texts shared by the channels (Markdown, readable as plain text).

A message is a headline plus blocks — facts (incident, topic, rule, time, why,
the numbers: current vs baseline), the most negative mentions (text, score,
author, link), the response plan's first steps, and the actions: how to
acknowledge and, with a web console (``Alert.console_url``), where to tap.
Channels render the blocks as they need (one Markdown text, card elements,
Slack sections, a mail body); card channels show the actions as buttons
(:func:`buttons`) instead of the actions block.
"""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo

from alerts.alert import Alert
from alerts.crisis_summary import CrisisSummary, summary_lines
from alerts.rules.measurements import describe_numbers
from monitor.core.text import http_url, markdown_inert, markdown_link_target

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
    lines += [f"- {line}" for line in summary_lines(CrisisSummary.from_json(alert.summary), escape=markdown_inert)]
    return lines


def mention_lines(alert: Alert) -> list[str]:
    if not alert.top_mentions or alert.kind == "resolved":
        return []
    lines = ["**代表性负面内容：**"]
    for i, m in enumerate(alert.top_mentions, 1):
        # strangers' words: no Markdown link or HTML of theirs may reach a chat robot (a fake 确认处理 link)
        text = markdown_inert(m.text if len(m.text) <= SNIPPET else m.text[:SNIPPET] + "…")
        score = f"{m.score:.2f}" if m.score is not None else "-"
        who = f" — {markdown_inert(m.author)}" if m.author else ""
        url = http_url(m.url)
        link = f" [原文]({markdown_link_target(url)})" if url else ""
        lines.append(f"{i}. {text}（情感 {score}{who}）{link}")
    return lines


def plan_lines(alert: Alert) -> list[str]:
    if not alert.plan_steps or alert.kind == "resolved":
        return []
    lines = ["**应急预案·待办步骤：**", *alert.plan_steps[:PLAN_STEPS]]  # each "N. title（owner，HH:MM前）"
    lines.append(f"完整预案：`monitor incidents show {alert.incident_id}`")
    return lines


# How the actions block reads: "links" — Markdown links to the console page (chat robots, mail);
# "cli" — the page's address as plain text and the CLI command (the terminal); None — left out
# (the channel shows :func:`buttons` instead).
Actions = Literal["links", "cli"] | None


def ack_line(alert: Alert, *, cli: bool = False) -> str:
    """How to acknowledge: the console page (``?ack=1``) when there is one, else the CLI command."""
    if alert.kind == "resolved":
        return ""
    if alert.ack_url and not cli:
        return f"确认处理：{alert.ack_url}"
    return f"确认处理：`{alert.ack_command}`" if alert.ack_command else ""


def link_line(alert: Alert, *, cli: bool = False) -> str:
    if not alert.console_url:
        return ""
    return f"查看详情：{alert.console_url}" if cli else f"[查看详情]({alert.console_url})"


def action_blocks(alert: Alert, actions: Actions = "links") -> list[list[str]]:
    if actions is None:
        return []
    if actions == "cli":  # a paragraph each: the terminal wraps a paragraph, and the address must stay whole
        return [[line] for line in (link_line(alert, cli=True), ack_line(alert, cli=True)) if line]
    return [[line for line in (link_line(alert), ack_line(alert)) if line]]


def action_lines(alert: Alert) -> list[str]:
    """The actions block of a Markdown message (console links, or the CLI hint)."""
    return [line for block in action_blocks(alert) for line in block]


def buttons(alert: Alert) -> list[tuple[str, str]]:
    """``(label, url)`` of the console buttons: 查看详情, and 确认处理 while the incident is not resolved."""
    if not alert.console_url:
        return []
    out = [("查看详情", alert.console_url)]
    if alert.ack_url:
        out.append(("确认处理", alert.ack_url))
    return out


def blocks(alert: Alert, actions: Actions = "links") -> list[str]:
    """The message body as Markdown blocks (facts, mentions, plan, actions), empty ones left out."""
    parts = [fact_lines(alert), mention_lines(alert), plan_lines(alert), *action_blocks(alert, actions)]
    return ["\n".join(lines) for lines in parts if any(lines)]


def render_markdown(alert: Alert, *, heading: bool = True, actions: Actions = "links") -> str:
    head = [f"### {headline(alert)}"] if heading else []
    return "\n\n".join(head + blocks(alert, actions))
