"""Chinese alert texts shared by the channels (Markdown, readable as plain text)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from alerts.alert import Alert

HEADLINES = {"firing": "舆情告警", "escalated": "舆情升级", "reminder": "未确认提醒", "reopened": "事件重开",
             "resolved": "已恢复"}
SNIPPET = 60

NUMBER_LABELS = {
    "current_negative": "当前窗口负面数",
    "current_total": "当前窗口总量",
    "negative_share": "负面占比",
    "reference_negative": "参考窗口负面数",
    "expected": "基准（折算到当前窗口）",
    "ratio": "倍数",
}


def headline(alert: Alert) -> str:
    return f"【{HEADLINES[alert.kind]}】{alert.severity.display} · {alert.title}"


def local_time(alert: Alert) -> str:
    return alert.at.astimezone(ZoneInfo(alert.tz)).strftime("%Y-%m-%d %H:%M:%S")


def render_markdown(alert: Alert, *, heading: bool = True) -> str:
    lines = [f"### {headline(alert)}", ""] if heading else []
    lines += [f"- 事件编号：#{alert.incident_id}", f"- 话题：{alert.topic}",
             f"- 规则：{alert.rule}", f"- 时间：{local_time(alert)}（{alert.tz}）", f"- 原因：{alert.reason}"]
    figures = [f"{label} {alert.numbers[key]}" for key, label in NUMBER_LABELS.items() if key in alert.numbers]
    if figures:
        lines.append("- 数据：" + "；".join(figures))
    if alert.top_mentions and alert.kind != "resolved":
        lines += ["", "**代表性负面内容：**"]
        for i, m in enumerate(alert.top_mentions, 1):
            text = m.text if len(m.text) <= SNIPPET else m.text[:SNIPPET] + "…"
            score = f"{m.score:.2f}" if m.score is not None else "-"
            who = f" — {m.author}" if m.author else ""
            link = f" [原文]({m.url})" if m.url else ""
            lines.append(f"{i}. {text}（情感 {score}{who}）{link}")
    if alert.kind != "resolved" and alert.ack_command:
        lines += ["", f"确认处理：`{alert.ack_command}`"]
    return "\n".join(lines)
