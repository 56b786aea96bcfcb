"""Building blocks for configuration models: durations, secrets, plugin bases.

Plugin families (sources, rules, channels) define their settings as frozen
pydantic models deriving from :class:`PluginConfig`; the loader in
:mod:`monitor.app.config` assembles them into one validated tree.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer
from pydantic_core import PydanticCustomError

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> timedelta:
    """Parse ``"90s"``, ``"10m"``, ``"1h30m"``, ``"2d"`` or a number of seconds.

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise _duration_error(value)
    if isinstance(value, (int, float)):
        if value < 0:
            raise _duration_error(value)
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip().lower()
        pos, total, matched = 0, 0.0, False
        for m in _DURATION_PART.finditer(text):
            if text[pos : m.start()].strip():
                raise _duration_error(value)
            total += float(m.group(1)) * _UNITS[m.group(2)]
            pos, matched = m.end(), True
        if matched and not text[pos:].strip():
            return timedelta(seconds=total)
    raise _duration_error(value)


def _duration_error(value: Any) -> PydanticCustomError:
    return PydanticCustomError(
        "duration", 'expected a duration like "10m", got {value}', {"value": _quote(value)}
    )


def _quote(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def format_duration(td: timedelta) -> str:
    seconds = int(td.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{td.total_seconds():g}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]

PositiveDuration = Annotated[Duration, Field(gt=timedelta(0))]


class Frozen(BaseModel):
    """Base of every config model: immutable, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


Name = Annotated[str, Field(min_length=1, max_length=100)]


class PluginConfig(Frozen):
    """Settings shared by every plugin instance: a unique name and a type."""

    name: Name
    type: str
