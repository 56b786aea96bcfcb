"""Incident severity levels, following the Chinese emergency-response scale."""

from __future__ import annotations

from enum import Enum


class Severity(str, Enum):
    """IV 一般 (lowest) … I 特别重大 (highest). Compare with :meth:`rank`."""

    IV = "IV"
    III = "III"
    II = "II"
    I = "I"  # noqa: E741

    @property
    def rank(self) -> int:
        return {"IV": 1, "III": 2, "II": 3, "I": 4}[self.value]

    @property
    def label(self) -> str:
        return {"IV": "一般", "III": "较大", "II": "重大", "I": "特别重大"}[self.value]

    @property
    def display(self) -> str:
        return f"{self.label}（{self.value}级）"

    def __ge__(self, other: "Severity") -> bool:  # type: ignore[override]
        return self.rank >= Severity(other).rank

    def __gt__(self, other: "Severity") -> bool:  # type: ignore[override]
        return self.rank > Severity(other).rank

    def __le__(self, other: "Severity") -> bool:  # type: ignore[override]
        return self.rank <= Severity(other).rank

    def __lt__(self, other: "Severity") -> bool:  # type: ignore[override]
        return self.rank < Severity(other).rank
