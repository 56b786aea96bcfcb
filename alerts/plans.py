"""Response plans (应急预案): ordered steps with an owner role, a due time and a reply template.

Plans are configured per severity (or named by a rule). Opening an incident
attaches its plan: each step is stored with its due time and its reply
template rendered with the incident's variables (Jinja2, sandboxed, strict —
an unknown variable is a config error, not an empty string in a public reply).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

from monitor.core.severity import Severity
from monitor.core.configtypes import Duration, Frozen, Name


def _template_error() -> type[Exception]:
    from jinja2 import TemplateError

    return TemplateError


@functools.cache
def _env():
    """The sandboxed Jinja environment, built on first use (loading a config without plans skips jinja2)."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)

# Variables a reply template may use, with sample values used to check templates at load time.
TEMPLATE_SAMPLE: dict[str, Any] = {
    "incident_id": 1, "topic": "鲜丰奶茶", "rule": "负面激增", "severity": "II", "severity_label": "重大",
    "reason": "「鲜丰奶茶」负面声量激增", "numbers": {"current_negative": 30, "ratio": 9.5},
    "opened_at": "2026-03-15 20:00", "top_mentions": [{"text": "喝完拉肚子", "url": "https://weibo.com/1", "author": "网友"}],
}


class PlanStep(Frozen):
    title: str = Field(min_length=1)
    owner: str = Field(min_length=1)  # a role, e.g. 舆情专员, 公关经理, 法务
    due: Duration | None = None  # after the incident opens
    template: str | None = None  # Jinja2 reply template

    @field_validator("template")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                _env().from_string(value).render(**TEMPLATE_SAMPLE)
            except _template_error() as exc:
                known = ", ".join(sorted(TEMPLATE_SAMPLE))
                raise ValueError(f"template does not render: {exc}; variables: {known}") from None
        return value


class PlanConfig(Frozen):
    name: Name
    severities: tuple[Severity, ...] = ()  # used for incidents of these severities unless a rule names a plan
    steps: tuple[PlanStep, ...] = Field(min_length=1)


def choose_plan(plans: tuple[PlanConfig, ...], severity: Severity, named: str | None) -> PlanConfig | None:
    if named:
        return next((p for p in plans if p.name == named), None)
    return next((p for p in plans if severity in p.severities), None)


def template_vars(*, incident_id: int, topic: str, rule: str, severity: Severity, reason: str,
                  numbers: dict, opened_at: str, top_mentions: list[dict]) -> dict[str, Any]:
    return {"incident_id": incident_id, "topic": topic, "rule": rule, "severity": severity.value,
            "severity_label": severity.label, "reason": reason, "numbers": numbers, "opened_at": opened_at,
            "top_mentions": top_mentions}


def render_template(template: str, variables: dict[str, Any]) -> str:
    try:
        return _env().from_string(template).render(**variables)
    except _template_error() as exc:  # validated at load time; a value-dependent failure still must not stop paging
        return f"（模板渲染失败：{exc}）\n{template}"


def step_line(position: int, title: str, owner: str, due_at: datetime | None, tz) -> str:
    due = f"，{due_at.astimezone(tz).strftime('%H:%M')}前" if due_at else ""
    return f"{position}. {title}（{owner}{due}）"
