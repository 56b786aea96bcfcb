"""A tiny plugin registry shared by the three plugin families.

Each family (sources, rules, channels) keeps one :class:`Registry` listing its
built-in types as ``"name": "module:Class"`` — adding a type is one new file
and one line there. Third-party packages add types through the entry-point
group named by the registry (e.g. ``yuqing.sources``) without touching this
project.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, family: str, group: str, builtins: dict[str, str]):
        self.family = family
        self.group = group
        self._paths = dict(builtins)
        self._loaded: dict[str, type[T]] | None = None

    def _load(self) -> dict[str, type[T]]:
        if self._loaded is None:
            paths = dict(self._paths)
            for ep in entry_points(group=self.group):
                paths.setdefault(ep.name, ep.value)
            loaded: dict[str, type[T]] = {}
            for name, path in paths.items():
                module_name, _, attr = path.partition(":")
                loaded[name] = getattr(importlib.import_module(module_name), attr)
            self._loaded = loaded
        return self._loaded

    def names(self) -> list[str]:
        return sorted(self._load())

    def get(self, name: str) -> type[T]:
        types = self._load()
        try:
            return types[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.family} type {name!r}; known: {', '.join(sorted(types))}"
            ) from None

    def config_models(self) -> list[type]:
        return [cls.config_model for _, cls in sorted(self._load().items())]  # type: ignore[attr-defined]
