"""复盘 reports: one incident's review, a day's or a period's summary, as HTML or Markdown.

``build_incident_report`` / ``build_summary`` query the database into plain
dataclasses (:mod:`monitor.reports.model`); ``write_report`` draws the chart
(:mod:`monitor.reports.chart`) and renders the Jinja2 templates in
``templates/``.
"""

from monitor.reports.incident import build_incident_report
from monitor.reports.model import IncidentReport, SummaryReport
from monitor.reports.progress import progress_bar
from monitor.reports.render import report_format, write_report
from monitor.reports.summary import build_summary

__all__ = ["IncidentReport", "SummaryReport", "build_incident_report", "build_summary", "progress_bar",
           "report_format", "write_report"]
