"""Incident severity levels, following the Chinese emergency-response scale — their order, names and
colours, defined once for the rules, the channels, the CLI and the pages."""

from __future__ import annotations

from enum import Enum

_RANK = {"IV": 1, "III": 2, "II": 3, "I": 4}
_LABEL = {"IV": "一般", "III": "较大", "II": "重大", "I": "特别重大"}
# One palette: hex for HTML (reports, console pages), a rich style for terminals, a Feishu card template.
_COLOUR = {"I": "#7f1d1d", "II": "#dc2626", "III": "#f59e0b", "IV": "#0891b2"}
_TERMINAL = {"I": "bold white on red", "II": "bold red", "III": "bold yellow", "IV": "cyan"}
_FEISHU = {"I": "red", "II": "orange", "III": "yellow", "IV": "blue"}


class Severity(str, Enum):
    """IV 一般 (lowest) … I 特别重大 (highest). Compare with ``<``/``>`` or :meth:`rank`."""

    IV = "IV"
    III = "III"
    II = "II"
    I = "I"  # noqa: E741

    @classmethod
    def ascending(cls) -> tuple["Severity", ...]:
        """IV, III, II, I."""
        return tuple(sorted(cls, key=lambda s: s.rank))

    @property
    def rank(self) -> int:
        return _RANK[self.value]

    @property
    def label(self) -> str:
        return _LABEL[self.value]

    @property
    def display(self) -> str:
        return f"{self.label}（{self.value}级）"

    @property
    def colour(self) -> str:
        return _COLOUR[self.value]

    @property
    def terminal_style(self) -> str:
        return _TERMINAL[self.value]

    @property
    def feishu_template(self) -> str:
        return _FEISHU[self.value]

    def raised(self, levels: int = 1) -> "Severity":
        """``levels`` steps up the scale, capped at I (特别重大)."""
        order = Severity.ascending()
        return order[min(len(order) - 1, order.index(self) + levels)]

    def __ge__(self, other: "Severity") -> bool:  # type: ignore[override]
        return self.rank >= Severity(other).rank

    def __gt__(self, other: "Severity") -> bool:  # type: ignore[override]
        return self.rank > Severity(other).rank

    def __le__(self, other: "Severity") -> bool:  # type: ignore[override]
        return self.rank <= Severity(other).rank

    def __lt__(self, other: "Severity") -> bool:  # type: ignore[override]
        return self.rank < Severity(other).rank
