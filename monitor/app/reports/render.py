"""Render reports as HTML (chart inline) or Markdown (chart as an SVG file beside it) with Jinja2."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from monitor.core.severity import Severity
from monitor.core.errors import UsageError
from monitor.core.text import http_url
from monitor.app.reports.chart import step_label, volume_chart
from monitor.app.reports.model import IncidentReport, SummaryReport

FORMATS = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md"}
STATUS = {"open": "未处理", "acknowledged": "处理中", "resolved": "已解决"}
STEP_STATUS = {"done": "已完成", "skipped": "已跳过", "pending": "未完成"}
EVENT_KIND = {
    "opened": "触发", "reopened": "重新打开", "evidence": "新证据", "escalated": "升级", "notified": "已通知",
    "silenced": "静默", "notify_failed": "通知失败", "not_routed": "未通知", "reminder": "提醒",
    "acknowledged": "确认", "note": "备注", "step": "预案步骤", "assigned": "指派", "resolved": "解决",
    "recovered": "恢复", "plan": "应急预案", "escalate": "手动升级", "silence": "静默话题", "inhibited": "已抑制",
}


def report_format(out: Path) -> str:
    """``html`` or ``md`` from the file name; UsageError for anything else or an unwritable place."""
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise UsageError(f"--out {out}: expected a file name ending in .html or .md")
    if out.is_dir():
        raise UsageError(f"--out {out}: is a directory")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"--out {out}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise UsageError(f"--out {out}: permission denied")
    return fmt


def _environment(tz: str) -> Environment:
    zone = ZoneInfo(tz)
    env = Environment(loader=PackageLoader("monitor.app.reports", "templates"),
                      autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)

    def local(dt: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
        return dt.astimezone(zone).strftime(fmt) if dt else "—"

    env.filters.update(
        local=local, hm=lambda dt: local(dt, "%m-%d %H:%M"), dur=format_duration, pct=_pct, score=_score,
        sev=lambda s: Severity(s).display, status=lambda s: STATUS.get(s, s),
        step_status=lambda s: STEP_STATUS.get(s, s), kind=lambda k: EVENT_KIND.get(k, k), md=_md_cell,
        step=step_label)
    env.tests["link"] = _is_link
    return env


def _is_link(url: object) -> bool:
    """Only http(s) URLs become links: mention URLs come from strangers (``javascript:`` stays text)."""
    return bool(http_url(url))


def format_duration(td: timedelta | None) -> str:
    """``4分12秒``, ``1小时03分``, ``2天3小时``; ``—`` when unknown."""
    if td is None:
        return "—"
    s = max(0, round(td.total_seconds()))
    d, rest = divmod(s, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    if d:
        return f"{d}天{h}小时"
    if h:
        return f"{h}小时{m:02d}分"
    if m:
        return f"{m}分{sec:02d}秒"
    return f"{sec}秒"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _score(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def _md_cell(value: object) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped."""
    return " ".join(str(value if value is not None else "—").split()).replace("|", "\\|")


def render(report: IncidentReport | SummaryReport, fmt: str, chart: str) -> str:
    """The document text; ``chart`` is the inline SVG (HTML) or the chart file's name (Markdown)."""
    name = "incident" if isinstance(report, IncidentReport) else "summary"
    env = _environment(report.tz)
    return env.get_template(f"{name}.{fmt}.j2").render(
        r=report, chart=Markup(chart) if fmt == "html" else chart, tz=report.tz)


def render_body(report: IncidentReport | SummaryReport) -> str:
    """The HTML document's body (chart inline), without its <html>, <style> and footer: to show the
    report inside another page (the web console styles it). Cut from the whole document, whose
    <main> and <footer> tags no text of the report can forge (it is escaped)."""
    html = render(report, "html", chart_for(report))
    return html[html.index("<main>") + len("<main>"):html.rindex("<footer>")]


def chart_for(report: IncidentReport | SummaryReport) -> str:
    markers = report.markers if isinstance(report, IncidentReport) else ()
    return volume_chart(report.series, markers, tz=report.tz)


def write_report(report: IncidentReport | SummaryReport, out: Path) -> list[Path]:
    """Write the report to ``out`` (format from its suffix); return the files written."""
    fmt = report_format(out)
    svg = chart_for(report)
    files: list[tuple[Path, str]] = []
    if fmt == "html":
        files.append((out, render(report, fmt, svg)))
    else:
        chart_file = out.with_suffix(".svg")
        files += [(chart_file, svg), (out, render(report, fmt, chart_file.name))]
    for path, text in files:
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return [path for path, _ in files][::-1]
