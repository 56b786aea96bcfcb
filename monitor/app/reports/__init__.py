"""复盘 reports: one incident's review, a day's or a period's summary, as HTML or Markdown.

``build_incident_report`` / ``build_summary`` read the stores (mentions streamed
from :mod:`monitor.storage.history`) into plain dataclasses
(:mod:`monitor.app.reports.model`); ``write_report`` draws the chart
(:mod:`monitor.app.reports.chart`) and renders the Jinja2 templates in
``templates/``.
"""

from monitor.app.reports.incident import build_incident_report
from monitor.app.reports.model import IncidentReport, SummaryReport
from monitor.app.reports.progress import progress_bar
from monitor.app.reports.render import report_format, write_report
from monitor.app.reports.summary import build_summary

__all__ = ["IncidentReport", "SummaryReport", "build_incident_report", "build_summary", "progress_bar",
           "report_format", "write_report"]
